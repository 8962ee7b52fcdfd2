// The guarded stream: messages between console text, split anywhere, resync
// after garbage, capped console lines; and the plain (socket) stream.
#include "frame_stream.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace moat::bms;
using moat::bms::test::bytes_of;
using moat::bms::test::hex;

namespace {

struct Collected {
    std::vector<msgpack::Value> messages;
    std::vector<std::string> lines;
    std::vector<bool> truncated;
    int errors = 0;
    void add(std::vector<StreamEvent> evs) {
        for (auto& e : evs) {
            if (auto* m = std::get_if<StreamMessage>(&e)) messages.push_back(m->value);
            else if (auto* l = std::get_if<ConsoleLine>(&e)) { lines.push_back(l->text); truncated.push_back(l->truncated); }
            else ++errors;
        }
    }
};

msgpack::Bytes cat(std::initializer_list<msgpack::Bytes> parts)
{
    msgpack::Bytes out;
    for (auto& p : parts) out.insert(out.end(), p.begin(), p.end());
    return out;
}

const msgpack::Value link_true(msgpack::Map{{"a", "link"}, {"d", true}});

} // namespace

TEST_CASE("console lines and messages share the line, in any chunking")
{
    const auto stream = cat({bytes_of("RELAY 1 Check OK\r\n"), FrameStream::frame(link_true, true), bytes_of("DLY 10000\r\nUL 4"),
                             FrameStream::frame(msgpack::Value(msgpack::Map{{"i", 3}, {"d", nullptr}}), true), bytes_of("1.2\n")});
    for (std::size_t chunk : {std::size_t(1), std::size_t(2), std::size_t(5), stream.size()}) {
        FrameStream fs(true);
        Collected c;
        for (std::size_t at = 0; at < stream.size(); at += chunk)
            c.add(fs.feed(std::span(stream).subspan(at, std::min(chunk, stream.size() - at))));
        INFO("chunk " << chunk);
        CHECK(c.errors == 0);
        CHECK(c.lines == std::vector<std::string>{"RELAY 1 Check OK", "DLY 10000", "UL 41.2"});
        REQUIRE(c.messages.size() == 2);
        CHECK(c.messages[0] == link_true);
        CHECK(c.messages[1].find("d")->is_nil());
        CHECK(fs.buffered() == 0);
    }
}

TEST_CASE("after invalid msgpack the stream resyncs on the next 0xC1")
{
    FrameStream fs(true);
    Collected c;
    // 0xC1 then a never-used type byte; then text that is swallowed up to the next guard.
    c.add(fs.feed(cat({hex("C1 C1"), bytes_of("junk\n"), FrameStream::frame(link_true, true), bytes_of("ok\n")})));
    // The second C1 of "C1 C1" starts the next attempt: C1 'j' ... is garbage too.
    CHECK(c.errors >= 1);
    CHECK(c.messages == std::vector<msgpack::Value>{link_true});
    CHECK(c.lines == std::vector<std::string>{"ok"});

    // A map with an integer key: one error, the following message survives.
    Collected d;
    d.add(fs.feed(cat({hex("C1 81 01 02"), FrameStream::frame(link_true, true)})));
    CHECK(d.errors == 1);
    CHECK(d.messages == std::vector<msgpack::Value>{link_true});
}

TEST_CASE("a console line is capped at 256 bytes and the rest of it dropped")
{
    FrameStream fs(true);
    Collected c;
    c.add(fs.feed(cat({msgpack::Bytes(300, 'x'), bytes_of("\nnext\n")})));
    REQUIRE(c.lines.size() == 2);
    CHECK(c.lines[0] == std::string(256, 'x'));
    CHECK(c.truncated[0]);
    CHECK(c.lines[1] == "next");
    CHECK_FALSE(c.truncated[1]);
    c.add(fs.feed(bytes_of("tail")));
    c.add(fs.finish());
    CHECK(c.lines.back() == "tail");
}

TEST_CASE("a truncated message is held, bounded by the size limit")
{
    FrameStream fs(true, msgpack::Limits{.max_bytes = 100});
    Collected c;
    c.add(fs.feed(hex("C1 C4 50")));  // bin of 80 bytes announced
    CHECK(c.messages.empty());
    CHECK(c.errors == 0);
    c.add(fs.feed(msgpack::Bytes(40, 0)));
    CHECK(c.messages.empty());
    c.add(fs.feed(msgpack::Bytes(40, 0)));
    CHECK(c.messages.size() == 1);
    c.add(fs.feed(hex("C1 C5 10 00")));  // 4 KiB announced: over the limit, an error at once
    CHECK(c.errors == 1);
    CHECK(fs.buffered() == 0);
}

TEST_CASE("the plain stream carries back-to-back objects without a guard")
{
    FrameStream fs(false);
    Collected c;
    const auto wire = cat({FrameStream::frame(link_true, false), FrameStream::frame(msgpack::Value(1), false)});
    CHECK(wire[0] != 0xC1);
    for (auto b : wire) c.add(fs.feed(std::span(&b, 1)));
    CHECK(c.messages == std::vector<msgpack::Value>{link_true, msgpack::Value(1)});
    c.add(fs.feed(hex("C1 05")));
    CHECK(c.errors == 1);
    CHECK(fs.buffered() == 0);
}
