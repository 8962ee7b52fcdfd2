// Register encodings (§3), the decoder test vectors of §9, plausibility,
// writes and display texts.
#include "registers.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <limits>

using namespace moat::meters;
using moat::Value;
using Words = std::vector<std::uint16_t>;

namespace {

Register reg(Encoding e, double scale = 1, Quantity q = Quantity::none, std::uint16_t words = 0)
{
    Register r;
    r.path = "/Test";
    r.encoding = e;
    r.words = words ? words : encoding_words(e);
    r.scale = scale;
    r.quantity = q;
    return r;
}

// Exact comparison, including the kind (int vs double vs string).
void check_exact(const Value& got, const Value& want)
{
    INFO("got " << moat::repr(got) << " (" << moat::kind_name(got) << "), want " << moat::repr(want) << " ("
                << moat::kind_name(want) << ")");
    CHECK(got.kind() == want.kind());
    CHECK(got == want);
}

} // namespace

TEST_CASE("decoder test vectors of spec §9")
{
    check_exact(decode(reg(Encoding::f32b), Words{0x4366, 0x8000}), 230.5);
    check_exact(decode(reg(Encoding::s32l, 10), Words{0x0901, 0x0000}), 230.5);
    check_exact(decode(reg(Encoding::s32l, 10), Words{0xFC18, 0xFFFF}), -100.0);
    check_exact(decode(reg(Encoding::u32b, 10), Words{0x0000, 0x0901}), 230.5);
    check_exact(decode(reg(Encoding::s32b, 100), Words{0xFFFF, 0xD8F0}), -100.0);
    check_exact(decode(reg(Encoding::u64b, 100), Words{0x0000, 0x0000, 0x0001, 0x86A0}), 1000.0);
    check_exact(decode(reg(Encoding::u16, 100), Words{0x1388}), 50.0);
    check_exact(decode(reg(Encoding::text, 1, Quantity::none, 2), Words{0x4232, 0x3320}), "B23 ");
}

TEST_CASE("identification words quoted elsewhere in the spec")
{
    // §4.3: ABB type designations as Victron's abb.py reads them (u32 at 0x8960).
    auto t2 = reg(Encoding::text, 1, Quantity::none, 2);
    check_exact(decode(t2, Words{0x4232, 0x3120}), "B21 ");
    check_exact(decode(t2, Words{0x4232, 0x3320}), "B23 ");
    check_exact(decode(t2, Words{0x4232, 0x3420}), "B24 ");
    check_exact(decode(reg(Encoding::u16), Words{0x4232}), 16946); // §2: "B2"
    // §6: node address 1.0 read as u32 is the original's "serial"; the baud-rate floats.
    check_exact(decode(reg(Encoding::u32b), Words{0x3F80, 0x0000}), 1065353216);
    check_exact(decode(reg(Encoding::f32b), Words{16384, 0}), 2.0);
    check_exact(decode(reg(Encoding::f32b), Words{16512, 0}), 4.0);
    check_exact(decode(reg(Encoding::f32b), Words{16438, 0}), 2.84375);
}

TEST_CASE("the same vectors pass the plausibility limits of their quantity")
{
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::voltage), Words{0x4366, 0x8000}), 230.5);
    check_exact(decode(reg(Encoding::s32l, 10, Quantity::power), Words{0xFC18, 0xFFFF}), -100.0);
    check_exact(decode(reg(Encoding::u64b, 100, Quantity::energy), Words{0, 0, 0x0001, 0x86A0}), 1000.0);
    check_exact(decode(reg(Encoding::u16, 100, Quantity::frequency), Words{0x1388}), 50.0);
}

TEST_CASE("integer encodings with scale 1 publish integers")
{
    check_exact(decode(reg(Encoding::u16), Words{0xFFFF}), 65535);
    check_exact(decode(reg(Encoding::s16), Words{0xFFFF}), -1);
    check_exact(decode(reg(Encoding::u32b), Words{0x3F80, 0x0000}), 1065353216);
    check_exact(decode(reg(Encoding::s32b), Words{0x8000, 0x0000}), std::int64_t{INT32_MIN});
    check_exact(decode(reg(Encoding::s32l), Words{0x0000, 0x8000}), std::int64_t{INT32_MIN});
    check_exact(decode(reg(Encoding::u64b), Words{0x7FFF, 0xFFFF, 0xFFFF, 0xFFFF}), INT64_MAX);
    // Above INT64_MAX an integer cannot be published.
    check_exact(decode(reg(Encoding::u64b), Words{0x8000, 0, 0, 0}), Value());
    // With a scale it is a double.
    check_exact(decode(reg(Encoding::u64b, 100), Words{0x8000, 0, 0, 0}), 9223372036854775808.0 / 100);
    // f32b is a double even with scale 1.
    check_exact(decode(reg(Encoding::f32b), Words{0x4040, 0x0000}), 3.0);
    // A float that is not exact in decimal is published as the float's exact value (as Python does).
    check_exact(decode(reg(Encoding::f32b), Words{0x3DCC, 0xCCCD}), double(0.1f));
}

TEST_CASE("as_string publishes the decimal text (/Serial)")
{
    auto r = reg(Encoding::u32b);
    r.as_string = true;
    check_exact(decode(r, Words{0x3F80, 0x0000}), "1065353216");
    check_exact(decode(r, Words{0x0000, 0x0000}), "0");
    auto big = reg(Encoding::u64b);
    big.as_string = true;
    check_exact(decode(big, Words{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE}), "18446744073709551614");
}

TEST_CASE("text: trailing NULs stripped, non-ASCII is invalid")
{
    auto r = reg(Encoding::text, 1, Quantity::none, 6);
    check_exact(decode(r, Words{0x4232, 0x3320, 0x3331, 0x322D, 0x3130, 0x3000}), "B23 312-100");
    check_exact(decode(r, Words{0x4232, 0x3100, 0, 0, 0, 0}), "B21");
    check_exact(decode(r, Words{0, 0, 0, 0, 0, 0}), "");
    check_exact(decode(r, Words{0x4232, 0x00FF, 0, 0, 0, 0}), Value());
    check_exact(decode(r, Words{0x4232, 0x0033, 0, 0, 0, 0}), Value()); // an embedded NUL
    check_exact(decode(r, Words{0x420A, 0x3300, 0, 0, 0, 0}), Value()); // a control character
}

TEST_CASE("mapu16: known codes map, unknown codes are invalid")
{
    static constexpr MapEntry seq[] = {{0x0000, 0}, {0xFFFF, 1}};
    auto r = reg(Encoding::mapu16);
    r.map = seq;
    check_exact(decode(r, Words{0x0000}), 0);
    check_exact(decode(r, Words{0xFFFF}), 1);
    check_exact(decode(r, Words{0x0001}), Value());
}

TEST_CASE("not-a-number, infinities and raw 'not available' markers are invalid")
{
    check_exact(decode(reg(Encoding::f32b), Words{0x7FC0, 0x0000}), Value());
    check_exact(decode(reg(Encoding::f32b), Words{0x7F80, 0x0000}), Value());
    check_exact(decode(reg(Encoding::f32b), Words{0xFF80, 0x0000}), Value());
    auto r = reg(Encoding::u64b, 100, Quantity::energy);
    r.invalid_raw = 0xFFFF'FFFF'FFFF'FFFF;
    check_exact(decode(r, Words{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}), Value());
    check_exact(decode(r, Words{0, 0, 0, 100}), 1.0);
    auto s = reg(Encoding::s32l, 10);
    s.invalid_raw = 0x7FFFFFFF; // assembled low word first: words 0xFFFF 0x7FFF
    check_exact(decode(s, Words{0xFFFF, 0x7FFF}), Value());
}

TEST_CASE("values out of their physical range are invalid, never garbage")
{
    // Word-swapped float 230.5 (a misread block): 0x80004366 is a tiny negative denormal voltage.
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::voltage), Words{0x8000, 0x4366}), Value());
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::voltage), Words{0x7F7F, 0xFFFF}), Value()); // 3.4e38 V
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::voltage), Words{0xC366, 0x8000}), Value()); // -230.5 V
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::voltage), Words{0x447A, 0x0000}), 1000.0); // edge
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::voltage), Words{0x447A, 0x4000}), Value()); // 1001 V
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::frequency), Words{0x0000, 0x0000}), 0.0);
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::frequency), Words{0xC248, 0x0000}), Value()); // -50 Hz
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::energy), Words{0xBF80, 0x0000}), Value()); // -1 kWh
    check_exact(decode(reg(Encoding::s32l, 10, Quantity::energy), Words{0xFC18, 0xFFFF}), Value()); // -100 kWh
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::current), Words{0xC2C8, 0x0000}), -100.0);
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::current), Words{0x4F00, 0x0000}), Value()); // 2.1e9 A
    // ABB's all-ones u32/u16 and max s32 are out of range too.
    check_exact(decode(reg(Encoding::u32b, 10, Quantity::voltage), Words{0xFFFF, 0xFFFF}), Value());
    check_exact(decode(reg(Encoding::u16, 100, Quantity::frequency), Words{0xFFFF}), Value());
    check_exact(decode(reg(Encoding::s32b, 100, Quantity::power), Words{0x7FFF, 0xFFFF}), Value());
    check_exact(decode(reg(Encoding::u64b, 100, Quantity::energy), Words{0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF}), Value());
    // Limits can be changed.
    Limits tight;
    tight.voltage = {200, 250};
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::voltage), Words{0x4366, 0x8000}, tight), 230.5);
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::voltage), Words{0x4348, 0x0000}, tight), 200.0);
    check_exact(decode(reg(Encoding::f32b, 1, Quantity::voltage), Words{0x4347, 0x8000}, tight), Value()); // 199.5
}

TEST_CASE("decode refuses a word count that does not match the register")
{
    CHECK_THROWS_AS(decode(reg(Encoding::f32b), Words{0x4366}), std::invalid_argument);
    CHECK_THROWS_AS(decode(reg(Encoding::u16), Words{}), std::invalid_argument);
    CHECK_THROWS_AS(decode(reg(Encoding::text, 1, Quantity::none, 2), Words{1, 2, 3}), std::invalid_argument);
}

TEST_CASE("encode for writes: range, integrality, word order")
{
    auto pc = reg(Encoding::f32b);
    pc.path = "/PhaseConfig";
    CHECK_THROWS_WITH(encode(pc, 3), "/PhaseConfig is not writable");
    pc.writable = Range{0, 3};
    CHECK(encode(pc, 3) == Words{0x4040, 0x0000});
    CHECK(encode(pc, 1.0) == Words{0x3F80, 0x0000});
    CHECK_THROWS_WITH(encode(pc, 4), "/PhaseConfig: 4 is outside 0.0..3.0");
    CHECK_THROWS_WITH(encode(pc, -1), "/PhaseConfig: -1 is outside 0.0..3.0");
    CHECK_THROWS_WITH(encode(pc, "3"), "/PhaseConfig: '3' is not a number");
    CHECK_THROWS_AS(encode(pc, Value()), std::invalid_argument);
    CHECK_THROWS_AS(encode(pc, true), std::invalid_argument);

    auto u = reg(Encoding::u16);
    u.path = "/PhaseConfig";
    u.writable = Range{0, 4};
    CHECK(encode(u, 4) == Words{4});
    CHECK(encode(u, 2.0) == Words{2});
    CHECK_THROWS_WITH(encode(u, 2.5), "/PhaseConfig: 2.5 does not fit u16");

    auto l = reg(Encoding::s32l, 10);
    l.writable = Range{-1000, 1000};
    CHECK(encode(l, -100) == Words{0xFC18, 0xFFFF}); // round trip of the §9 vector
    check_exact(decode(l, encode(l, -100)), -100.0);
    auto b = reg(Encoding::u32b, 10);
    b.writable = Range{0, 1000};
    CHECK(encode(b, 230.5) == Words{0x0000, 0x0901});

    auto t = reg(Encoding::text, 1, Quantity::none, 2);
    t.writable = Range{0, 1};
    CHECK_THROWS_AS(encode(t, 1), std::invalid_argument);
}

TEST_CASE("labels for display")
{
    static constexpr Label phases[] = {{0, "undefined"}, {1, "1P"}, {2, "3P.1"}, {3, "3P.n"}};
    auto r = reg(Encoding::f32b);
    CHECK_FALSE(label(r, 3.0));
    r.labels = phases;
    CHECK(label(r, 3.0) == "3P.n");
    CHECK(label(r, 0) == "undefined");
    CHECK_FALSE(label(r, 2.5));
    CHECK_FALSE(label(r, 9));
    CHECK_FALSE(label(r, Value()));
    r.unknown_label = "unknown";
    CHECK(label(r, 9) == "unknown");
}

TEST_CASE("max_age: 1 s for the powers, 4 s for everything else")
{
    using namespace std::chrono_literals;
    CHECK(max_age_for("/Ac/Power") == 1s);
    CHECK(max_age_for("/Ac/L1/Power") == 1s);
    CHECK(max_age_for("/Ac/L3/Power") == 1s);
    CHECK(max_age_for("/Ac/L1/Voltage") == 4s);
    CHECK(max_age_for("/Ac/Energy/Forward") == 4s);
    CHECK(max_age_for("/Serial") == 4s);
}

TEST_CASE("register descriptions for messages")
{
    Register r;
    r.path = "/Ac/L1/Voltage";
    r.access = Access::input;
    r.encoding = Encoding::f32b;
    r.words = 2;
    CHECK(r.describe() == "/Ac/L1/Voltage (input 0x0000+2 f32b)");
    CHECK(r.published());
    r.path = "legacy-serial";
    CHECK_FALSE(r.published());
    CHECK(quantity_name(Quantity::energy) == "energy");
}
