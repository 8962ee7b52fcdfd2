// The msgpack codec: the link's example messages byte for byte, both key
// orders, float32/64, absent vs nil, and the bounds.
#include "msgpack.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace moat::bms;
using namespace moat::bms::msgpack;
using moat::bms::test::hex;

namespace {

Value decoded(const Bytes& b)
{
    auto r = decode(b);
    REQUIRE(r.status == DecodeStatus::ok);
    CHECK(r.used == b.size());
    return r.value;
}

Bytes without_guard(Bytes b)
{
    REQUIRE(b.at(0) == 0xC1);
    b.erase(b.begin());
    return b;
}

} // namespace

TEST_CASE("the info long poll request encodes byte for byte")
{
    Value req(Map{{"a", Array{"batt", "info"}}, {"d", Map{{"gen", 5}}}, {"i", 12}});
    const auto wire = hex("C1 83 A1 61 92 A4 62 61 74 74 A4 69 6E 66 6F A1 64 81 A3 67 65 6E 05 A1 69 0C");
    CHECK(encode(req) == without_guard(wire));
    CHECK(decoded(without_guard(wire)) == req);
}

TEST_CASE("the info reply decodes with float32 values in either key order")
{
    // u 53.5, i -1.25, w.s 100.0, w.n 7, relay on, not forced, live; gen 6.
    const auto device = hex("82 A1 64 85 A1 75 CA 42 56 00 00 A1 69 CA BF A0 00 00 A1 77 82 A1 73 CA 42 C8 00 00 A1 6E 07"
                            "   A1 72 83 A1 73 01 A1 66 C0 A1 6C C3 A3 67 65 6E 06 A1 69 0C");
    Value expect(Map{{"d", Map{{"u", 53.5}, {"i", -1.25}, {"w", Map{{"s", 100.0}, {"n", 7}}},
                               {"r", Map{{"s", 1}, {"f", nullptr}, {"l", true}}}, {"gen", 6}}},
                     {"i", 12}});
    CHECK(encode(expect, {.float32 = true}) == device);
    const Value v = decoded(device);
    CHECK(v == expect);
    CHECK(v.find("d")->find("u")->number() == 53.5);
    CHECK(v.find("d")->find("r")->find("f")->is_nil());

    // The same object with every map reversed (the RP2040 packer's order) and float64.
    const auto reversed = hex("82 A1 69 0C A1 64 85 A3 67 65 6E 06 A1 72 83 A1 6C C3 A1 66 C0 A1 73 01"
                              "   A1 77 82 A1 6E 07 A1 73 CB 40 59 00 00 00 00 00 00"
                              "   A1 69 CB BF F4 00 00 00 00 00 00 A1 75 CB 40 4A C0 00 00 00 00 00");
    CHECK(decoded(reversed) == expect);
}

TEST_CASE("the in_pkt notification and the send request encode byte for byte")
{
    const auto payload = hex("00 11 02 0B 95 0E 00 00 CE 8E 00 00");
    const auto wire = hex("C1 82 A1 64 C4 0C 00 11 02 0B 95 0E 00 00 CE 8E 00 00 A1 61 92 A3 73 65 72 A6 69 6E 5F 70 6B 74");
    Value notif(Map{{"d", payload}, {"a", Array{"ser", "in_pkt"}}});
    CHECK(encode(notif) == without_guard(wire));
    const Value v = decoded(without_guard(wire));
    REQUIRE(v.find("d")->bin());
    CHECK(*v.find("d")->bin() == payload);
    CHECK(v.find("i") == nullptr);

    Value send(Map{{"a", Array{"ser", "send"}}, {"d", Map{{"data", hex("00 01 00 7B")}}}, {"i", 13}});
    CHECK(encode(send) == without_guard(hex("C1 83 A1 61 92 A3 73 65 72 A4 73 65 6E 64 A1 64 81 A4 64 61 74 61 C4 04 00 01 00 7B A1 69 0D")));
}

TEST_CASE("rly: an absent key reads, a nil value releases, false forces off")
{
    auto rly = [](Map d) { return encode(Value(Map{{"a", Array{"batt", "rly"}}, {"d", std::move(d)}, {"i", 14}})); };
    CHECK(rly(Map{{"st", false}}) == without_guard(hex("C1 83 A1 61 92 A4 62 61 74 74 A3 72 6C 79 A1 64 81 A2 73 74 C2 A1 69 0E")));
    CHECK(rly(Map{{"st", nullptr}}) == without_guard(hex("C1 83 A1 61 92 A4 62 61 74 74 A3 72 6C 79 A1 64 81 A2 73 74 C0 A1 69 0E")));
    CHECK(rly(Map{}) == without_guard(hex("C1 83 A1 61 92 A4 62 61 74 74 A3 72 6C 79 A1 64 80 A1 69 0E")));

    const Value release = decoded(hex("81 A2 73 74 C0"));
    const Value read = decoded(hex("80"));
    REQUIRE(release.find("st") != nullptr);
    CHECK(release.find("st")->is_nil());
    CHECK(read.find("st") == nullptr);
    CHECK_FALSE(release == read);
}

TEST_CASE("integers take the smallest form and round-trip at every boundary")
{
    CHECK(encode(Value(0)) == hex("00"));
    CHECK(encode(Value(127)) == hex("7F"));
    CHECK(encode(Value(128)) == hex("CC 80"));
    CHECK(encode(Value(65536)) == hex("CE 00 01 00 00"));
    CHECK(encode(Value(-1)) == hex("FF"));
    CHECK(encode(Value(-33)) == hex("D0 DF"));
    CHECK(encode(Value(-129)) == hex("D1 FF 7F"));
    for (long long x : std::initializer_list<long long>{0LL, 1LL, 127LL, 128LL, 255LL, 256LL, 65535LL, 65536LL, 4294967295LL, 4294967296LL, (long long)INT64_MAX,
                        -1LL, -32LL, -33LL, -128LL, -129LL, -32768LL, -32769LL, -2147483648LL, -2147483649LL, (long long)INT64_MIN})
        CHECK(decoded(encode(Value(x))).integer() == x);
    const Value big(18446744073709551615ULL);
    CHECK(encode(big) == hex("CF FF FF FF FF FF FF FF FF"));
    CHECK(decoded(encode(big)) == big);
}

TEST_CASE("strings, binaries and arrays switch to longer length fields")
{
    std::string s31(31, 'x'), s32(32, 'x'), s256(256, 'x');
    CHECK(encode(Value(s31))[0] == 0xBF);
    CHECK(encode(Value(s32))[0] == 0xD9);
    CHECK(encode(Value(s256))[0] == 0xDA);
    CHECK(*decoded(encode(Value(s256))).str() == s256);
    Array a16(16, Value(1));
    CHECK(encode(Value(a16))[0] == 0xDC);
    CHECK(decoded(encode(Value(a16))) == Value(a16));
    CHECK(encode(Value(Bytes(300, 7)))[0] == 0xC5);
}

TEST_CASE("ext 4 (a proxy reference) decodes opaquely and is never sent")
{
    const Value v = decoded(hex("C7 03 04 61 62 63"));
    REQUIRE(v.ext());
    CHECK(v.ext()->type == 4);
    CHECK(v.ext()->data == hex("61 62 63"));
    CHECK(decoded(hex("D4 04 41")).ext()->data == hex("41"));
    CHECK_THROWS_AS(encode(v), EncodeError);
}

TEST_CASE("a prefix needs more bytes, garbage is an error")
{
    const auto full = hex("83 A1 61 92 A4 62 61 74 74 A4 69 6E 66 6F A1 64 81 A3 67 65 6E 05 A1 69 0C");
    for (std::size_t n = 0; n < full.size(); ++n) {
        auto r = decode(std::span(full).first(n));
        CHECK(r.status == DecodeStatus::need_more);
        CHECK(r.used > n);
    }
    CHECK(decode(hex("C1")).status == DecodeStatus::error);
    CHECK(decode(hex("81 01 02")).status == DecodeStatus::error);        // integer key
    CHECK(decode(hex("82 A1 61 01 A1 61 02")).status == DecodeStatus::error);  // duplicate key
    // Two objects back to back: only the first is consumed.
    auto r = decode(hex("01 02"));
    CHECK(r.status == DecodeStatus::ok);
    CHECK(r.used == 1);
}

TEST_CASE("hostile lengths, counts and depths are refused before allocating")
{
    // A 4 GiB binary: an error at once, not "need more" forever.
    CHECK(decode(hex("C6 FF FF FF FF")).status == DecodeStatus::error);
    // 2^32-1 array elements.
    CHECK(decode(hex("DD FF FF FF FF")).status == DecodeStatus::error);
    // Element count over all levels.
    Limits small{.max_bytes = 1024, .max_depth = 4, .max_elements = 10};
    CHECK(decode(encode(Value(Array(10, Value(0)))), small).status == DecodeStatus::ok);
    CHECK(decode(encode(Value(Array{Array(5, Value(0)), Array(5, Value(0))})), small).status == DecodeStatus::error);
    // Depth.
    CHECK(decode(hex("91 91 91 90"), small).status == DecodeStatus::ok);
    CHECK(decode(hex("91 91 91 91 90"), small).status == DecodeStatus::error);
    // Size.
    CHECK(decode(encode(Value(Bytes(2000, 0))), small).status == DecodeStatus::error);
}
