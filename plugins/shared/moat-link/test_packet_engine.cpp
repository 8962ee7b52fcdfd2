// The packet engine in virtual time against a scripted ring: pacing, slot
// reuse, lost / overtaken / duplicate / stray packets, retries, short replies.
#include "packet_engine.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace moat;
using namespace moat::bms;
using namespace moat::bms::cell;
using namespace std::chrono_literals;

namespace {

/// A ring of `modules` that answers voltage reads (raw 3300 + hop) after
/// `latency`, unless the test drops or holds a reply.
struct Ring : test::VirtualLoop {
    explicit Ring(int modules = 16, PacketEngineOptions o = {}) : modules(modules)
    {
        o.ring_cells = o.ring_cells ? o.ring_cells : modules;
        engine = std::make_unique<PacketEngine>(clock, [this](Bytes p) { return on_send(std::move(p)); }, o, Logger("ring", null_sink()));
    }
    int modules;
    Duration latency = 200ms;
    std::function<bool(int nth)> drop = [](int) { return false; };  ///< drop the reply to the nth send (0-based)
    std::function<void(Bytes&)> mangle = [](Bytes&) {};
    std::vector<Bytes> sends;
    std::vector<double> send_times;
    std::vector<Bytes> held;  ///< dropped replies, for late delivery
    std::vector<Timer> timers;
    std::unique_ptr<PacketEngine> engine;

    Bytes reply_to(const Bytes& req) const
    {
        auto h = *decode_header(req);
        Bytes out = req;
        int addressed = 0;
        for (int hop = 0; hop < modules; ++hop)
            if (hop >= h.start && hop <= h.start + h.cells) {
                ++addressed;
                if (h.command == 1) {
                    auto rec = encode(VoltageStatus{std::uint16_t(3300 + hop), 0});
                    out.insert(out.end(), rec.begin(), rec.end());
                }
            }
        out[1] |= addressed ? 0x10 : 0;
        out[2] = std::uint8_t(modules);
        return out;
    }
    Task<void> on_send(Bytes p)
    {
        const int nth = int(sends.size());
        sends.push_back(p);
        send_times.push_back(elapsed());
        Bytes reply = reply_to(p);
        mangle(reply);
        if (drop(nth)) held.push_back(reply);
        else deliver(reply, latency);
        co_return;
    }
    void deliver(Bytes reply, Duration after)
    {
        timers.emplace_back(clock, clock.now() + after, [this, reply] { engine->on_packet(reply); });
    }
};

/// A reply for sequence 5, which nobody waits for.
Bytes hex_stray() { return {0x00, 0x11, 0x02, 0x0D, 0x95, 0x0E, 0x00, 0x00, 0x95, 0x0E, 0x00, 0x00}; }

CellRequest read_all(int n) { return CellRequest{.command = Command::read_voltage_and_status, .start = 0, .count = n, .records = {}}; }

Task<void> request_into(PacketEngine& e, CellRequest req, std::optional<Reply>& out, std::optional<CellErrorKind>& err)
{
    try {
        out = co_await e.request(std::move(req));
    } catch (const CellError& x) {
        err = x.kind();
    }
}

} // namespace

TEST_CASE("a 16-cell voltage read paces the next send by at least 816.7 ms")
{
    Ring r(16);
    CHECK(std::chrono::duration<double, std::milli>(r.engine->pacing(read_all(16))).count() == Approx(816.667).margin(0.01));
    r.run(30s, [&]() -> Task<void> {
        for (int k = 0; k < 3; ++k) {
            Reply rep = co_await r.engine->request(read_all(16));
            REQUIRE(rep.records.size() == 16);
            CHECK(decode_voltage(rep.records[15]).raw() == 3315);
        }
    });
    REQUIRE(r.send_times.size() == 3);
    CHECK(r.send_times[1] - r.send_times[0] >= 0.8166);
    CHECK(r.send_times[2] - r.send_times[1] >= 0.8166);
    CHECK(r.send_times[1] - r.send_times[0] < 0.83);
}

TEST_CASE("sequence numbers wrap over the eight slots")
{
    Ring r(2);
    r.run(60s, [&]() -> Task<void> {
        for (int k = 0; k < 10; ++k) co_await r.engine->request(read_all(2));
    });
    REQUIRE(r.sends.size() == 10);
    for (int k = 0; k < 10; ++k) CHECK(decode_header(r.sends[k])->sequence == k % 8);
    CHECK(r.engine->occupied() == 0);
}

TEST_CASE("an overtaking reply fails the earlier slot as lost, the retry succeeds")
{
    Ring r(2);
    r.drop = [](int nth) { return nth == 0; };
    std::optional<Reply> a, b;
    std::optional<CellErrorKind> ea, eb;
    r.run(60s, [&]() -> Task<void> {
        auto body = [&](TaskGroup& g) -> Task<void> {
            g.spawn(request_into(*r.engine, read_all(2), a, ea));
            g.spawn(request_into(*r.engine, read_all(1), b, eb));
            co_return;
        };
        co_await with_group(body);
    });
    CHECK_FALSE(ea);
    CHECK_FALSE(eb);
    REQUIRE(a);
    CHECK(a->records.size() == 2);
    CHECK(r.engine->counters().lost == 1);
    CHECK(r.engine->counters().retries == 1);
    REQUIRE(r.sends.size() == 3);
    // The lost request went out again as sequence 2.
    CHECK(decode_header(r.sends[2])->sequence == 2);
    CHECK(decode_header(r.sends[2])->cells == 1);
}

TEST_CASE("duplicate and stray packets are ignored without harm")
{
    Ring r(2);
    r.run(30s, [&]() -> Task<void> {
        Reply rep = co_await r.engine->request(read_all(2));
        r.engine->on_packet(r.reply_to(r.sends[0]));  // the same reply again
        r.engine->on_packet(hex_stray());
        Reply again = co_await r.engine->request(read_all(2));
        CHECK(again.records.size() == 2);
    });
    CHECK(r.engine->counters().strays == 2);
    CHECK(r.engine->counters().lost == 0);
    CHECK(r.engine->counters().retries == 0);
}

TEST_CASE("a dead ring: ten attempts, then the first error")
{
    Ring r(16);
    r.drop = [](int) { return true; };
    std::optional<Reply> a;
    std::optional<CellErrorKind> ea;
    r.run(300s, [&]() -> Task<void> { co_await request_into(*r.engine, read_all(16), a, ea); });
    REQUIRE(ea);
    CHECK(*ea == CellErrorKind::timeout);
    CHECK(r.sends.size() == 10);
    CHECK(r.engine->counters().retries == 9);
    // Each attempt waits 5 s for its reply (within the 16/3 s attempt bound).
    CHECK(r.elapsed() == Approx(50.0).margin(0.5));
    CHECK(r.engine->occupied() == 0);
}

TEST_CASE("a short reply is a missing module and is not retried")
{
    Ring r(1);  // one module in the ring, two addressed
    std::optional<Reply> a;
    std::optional<CellErrorKind> ea;
    r.run(30s, [&]() -> Task<void> { co_await request_into(*r.engine, read_all(2), a, ea); });
    REQUIRE(ea);
    CHECK(*ea == CellErrorKind::short_reply);
    CHECK(r.sends.size() == 1);
}

TEST_CASE("no such cell and spurious data are not retried")
{
    SECTION("seen unset")
    {
        Ring r(2);
        r.mangle = [](Bytes& b) { b[1] &= ~0x10; };
        std::optional<Reply> a;
        std::optional<CellErrorKind> ea;
        r.run(30s, [&]() -> Task<void> { co_await request_into(*r.engine, read_all(2), a, ea); });
        CHECK(ea == CellErrorKind::no_such_cell);
        CHECK(r.sends.size() == 1);
    }
    SECTION("garbage appended")
    {
        Ring r(2);
        r.mangle = [](Bytes& b) { b.push_back(0x55); };
        std::optional<Reply> a;
        std::optional<CellErrorKind> ea;
        r.run(30s, [&]() -> Task<void> { co_await request_into(*r.engine, read_all(2), a, ea); });
        CHECK(ea == CellErrorKind::spurious_data);
        CHECK(r.sends.size() == 1);
    }
}

TEST_CASE("a broadcast write needs exactly one record and skips it in the reply")
{
    Ring r(4);
    r.run(30s, [&]() -> Task<void> {
        Bytes level;
        put_le(level, 0, 2);
        CellRequest req{.command = Command::write_balance_level, .broadcast = true, .records = {level}};
        Reply rep = co_await r.engine->request(req);
        CHECK(rep.records.empty());
        CHECK(rep.header.broadcast);
        req.records.push_back(level);
        try {
            co_await r.engine->request(req);
            FAIL("two records accepted");
        } catch (const CellError& e) {
            CHECK(e.kind() == CellErrorKind::bad_request);
        }
    });
    REQUIRE(r.sends.size() == 1);
    CHECK(r.sends[0] == Bytes{0x00, 0x2B, 0x00, 0xF8, 0x00, 0x00});
}

TEST_CASE("cancelling a request frees its slot, its late reply is a stray")
{
    Ring r(2);
    r.drop = [](int nth) { return nth == 0; };
    r.run(30s, [&]() -> Task<void> {
        try {
            auto t = with_timeout(1s, r.engine->request(read_all(2)));
            co_await t;
        } catch (const TimeoutError&) {
        }
        CHECK(r.engine->occupied() == 0);
        r.engine->on_packet(r.held.at(0));
        CHECK(r.engine->counters().strays == 1);
        Reply rep = co_await r.engine->request(read_all(2));
        CHECK(rep.records.size() == 2);
    });
}
