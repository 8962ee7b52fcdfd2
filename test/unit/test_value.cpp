// Tests for the Venus BusItem value model (shared/specs/venus-dbus.md §2).
#include <catch2/catch.hpp>

#include "bus_call.hpp"
#include "value_dbus.hpp"
#include "moat/value.hpp"

#include <sdbus-c++/sdbus-c++.h>

#include <cmath>
#include <fcntl.h>
#include <limits>
#include <unistd.h>

using moat::Value;
using Kind = moat::Value::Kind;

// Failure messages show values as Python repr.
template <> struct Catch::StringMaker<moat::Value> {
    static std::string convert(const moat::Value& v) { return moat::repr(v); }
};

namespace {

// Builds a variant whose content is itself a variant: v(v(...)). The Variant
// copy constructor hides the template one, so go through a custom type.
struct Nested {
    sdbus::Variant inner;
};

} // namespace

template <> struct sdbus::signature_of<Nested> {
    static const std::string str() { return "v"; }
};

namespace {

sdbus::Message& operator<<(sdbus::Message& msg, const Nested& n)
{
    return msg << n.inner;
}

sdbus::Variant nest(sdbus::Variant inner)
{
    return sdbus::Variant(Nested{std::move(inner)});
}

// Reads a Variant's content with moat::read_value, as a method handler would
// read a bare argument from its message.
struct ReadBack {
    Value value;
};
thread_local std::string read_back_signature; // the variant's content
thread_local std::string read_as_signature;   // what read_value is told

} // namespace

template <> struct sdbus::signature_of<ReadBack> {
    static const std::string str() { return read_back_signature; }
};

namespace {

sdbus::Message& operator>>(sdbus::Message& msg, ReadBack& out)
{
    out.value = moat::read_value(msg, read_as_signature);
    return msg;
}

Value read_back(const sdbus::Variant& v, std::string as = {})
{
    read_back_signature = v.peekValueType();
    read_as_signature = as.empty() ? read_back_signature : as;
    return v.get<ReadBack>().value;
}

// Same kind and same contents, recursively (stricter than operator==).
bool same(const Value& a, const Value& b)
{
    if (a.kind() != b.kind())
        return false;
    switch (a.kind()) {
    case Kind::invalid: return true;
    case Kind::boolean: return a.as_bool() == b.as_bool();
    case Kind::integer: return a.as_int() == b.as_int();
    case Kind::floating:
        return std::isnan(a.as_double()) ? std::isnan(b.as_double())
                                         : (a.as_double() == b.as_double() &&
                                            std::signbit(a.as_double()) == std::signbit(b.as_double()));
    case Kind::string: return a.as_string() == b.as_string();
    case Kind::list: {
        const auto& x = a.as_list();
        const auto& y = b.as_list();
        if (x.size() != y.size())
            return false;
        for (std::size_t i = 0; i < x.size(); ++i)
            if (!same(x[i], y[i]))
                return false;
        return true;
    }
    case Kind::dict: {
        const auto& x = a.as_dict();
        const auto& y = b.as_dict();
        if (x.size() != y.size())
            return false;
        for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j)
            if (i->first != j->first || !same(i->second, j->second))
                return false;
        return true;
    }
    }
    return false;
}

std::string sig(const Value& v)
{
    return moat::to_variant(v).peekValueType();
}

// The wire signature a value gets after decoding `v` and encoding it again.
std::string reencoded(const sdbus::Variant& v)
{
    return sig(moat::from_variant(v));
}

} // namespace

// ---------------------------------------------------------------------------
// Construction and accessors

TEST_CASE("Value: construction, predicates and accessors", "[value]")
{
    CHECK(Value().is_invalid());
    CHECK(Value::invalid().is_invalid());
    CHECK_FALSE(Value::invalid().is_valid());
    CHECK(Value(static_cast<const char*>(nullptr)).is_invalid());

    CHECK(Value(true).is_bool());
    CHECK(Value(true).as_bool());
    CHECK(Value(false).kind() == Kind::boolean);

    CHECK(Value(42).is_int());
    CHECK(Value(42).as_int() == 42);
    CHECK(Value(std::int64_t{5000000000}).as_int() == 5000000000);
    CHECK(Value(std::uint8_t{200}).as_int() == 200);
    CHECK(Value(std::uint32_t{4000000000u}).as_int() == 4000000000);
    CHECK(Value(std::uint64_t{9223372036854775807u}).as_int() == std::numeric_limits<std::int64_t>::max());
    CHECK_THROWS_AS(Value(std::uint64_t{9223372036854775808u}), std::out_of_range);

    CHECK(Value(2.5).is_double());
    CHECK(Value(2.5).as_double() == 2.5);
    CHECK(Value(0.5f).as_double() == 0.5);

    CHECK(Value("abc").is_string());
    CHECK(Value("abc").as_string() == "abc");
    CHECK(Value(std::string("x")).as_string() == "x");
    CHECK(Value(std::string_view("sv")).as_string() == "sv");
    CHECK(Value("").is_string());
    CHECK(Value("").is_valid());

    const Value list = Value::make_list({1, "a", 2.5});
    REQUIRE(list.is_list());
    CHECK(list.as_list().size() == 3);
    CHECK(list.as_list()[1].as_string() == "a");

    const Value dict = Value::make_dict({{"a", 1}, {"b", "x"}});
    REQUIRE(dict.is_dict());
    CHECK(dict.as_dict().at("b").as_string() == "x");

    CHECK(Value(1).is_number());
    CHECK(Value(1.5).is_number());
    CHECK(Value(true).is_number());
    CHECK_FALSE(Value("1").is_number());
    CHECK(Value(3).as_number() == 3.0);
    CHECK(Value(true).as_number() == 1.0);
    CHECK(Value(2.5).as_number() == 2.5);
    CHECK_FALSE(Value("3").as_number().has_value());
    CHECK_FALSE(Value().as_number().has_value());

    // No silent conversions in the typed accessors.
    CHECK_THROWS_AS(Value(1).as_double(), std::logic_error);
    CHECK_THROWS_AS(Value(1.0).as_int(), std::logic_error);
    CHECK_THROWS_AS(Value(true).as_int(), std::logic_error);
    CHECK_THROWS_AS(Value().as_string(), std::logic_error);
    CHECK_THROWS_WITH(Value("x").as_int(), Catch::Contains("as_int") && Catch::Contains("string"));

    CHECK(moat::kind_name(Value()) == "invalid");
    CHECK(moat::kind_name(Value(1.0)) == "double");
    CHECK(moat::kind_name(Value::make_dict({})) == "dict");
}

// ---------------------------------------------------------------------------
// Encoding, §2.1: one test per row of the table

TEST_CASE("to_variant: invalid is an empty ai, the one encoding of invalid", "[value]")
{
    const auto v = moat::to_variant(Value::invalid());
    CHECK(v.peekValueType() == "ai");
    CHECK(v.get<std::vector<std::int32_t>>().empty());
}

TEST_CASE("to_variant: boolean is b, not an integer", "[value]")
{
    CHECK(sig(Value(true)) == "b");
    CHECK(sig(Value(false)) == "b");
    CHECK(moat::to_variant(Value(true)).get<bool>() == true);
    CHECK(moat::to_variant(Value(false)).get<bool>() == false);
}

TEST_CASE("to_variant: integers in int32 range are i", "[value]")
{
    for (std::int64_t i : {std::int64_t{0}, std::int64_t{1}, std::int64_t{-1}, std::int64_t{45057},
                           std::int64_t{2147483647}, std::int64_t{-2147483648}}) {
        CAPTURE(i);
        const auto v = moat::to_variant(Value(i));
        CHECK(v.peekValueType() == "i");
        CHECK(v.get<std::int32_t>() == i);
    }
}

TEST_CASE("to_variant: integers outside int32 are x (5000000000 → x)", "[value]")
{
    for (std::int64_t i : {std::int64_t{5000000000}, std::int64_t{2147483648}, std::int64_t{-2147483649},
                           std::int64_t{1099511627776}, std::numeric_limits<std::int64_t>::max(),
                           std::numeric_limits<std::int64_t>::min()}) {
        CAPTURE(i);
        const auto v = moat::to_variant(Value(i));
        CHECK(v.peekValueType() == "x");
        CHECK(v.get<std::int64_t>() == i);
    }
}

TEST_CASE("to_variant: double is d, also when whole", "[value]")
{
    CHECK(sig(Value(25.0)) == "d");
    CHECK(sig(Value(0.0)) == "d");
    CHECK(moat::to_variant(Value(-3.27)).get<double>() == -3.27);
    CHECK(std::isnan(moat::to_variant(Value(std::nan(""))).get<double>()));
}

TEST_CASE("to_variant: string is s, and the empty string is not invalid", "[value]")
{
    CHECK(sig(Value("abc")) == "s");
    CHECK(moat::to_variant(Value("abc")).get<std::string>() == "abc");
    CHECK(sig(Value("")) == "s");
    CHECK(moat::to_variant(Value("")).get<std::string>().empty());
}

TEST_CASE("to_variant: a non-empty list is av of variant-wrapped elements", "[value]")
{
    const auto v = moat::to_variant(Value::make_list({1, 2, 3}));
    REQUIRE(v.peekValueType() == "av");
    const auto items = v.get<std::vector<sdbus::Variant>>();
    REQUIRE(items.size() == 3);
    for (int i = 0; i < 3; ++i) {
        CHECK(items[i].peekValueType() == "i");
        CHECK(items[i].get<std::int32_t>() == i + 1);
    }

    // Every element follows the same rules.
    const auto mixed = moat::to_variant(
        Value::make_list({true, 5000000000, 2.5, "s", Value::invalid(), Value::make_list({}),
                          Value::make_list({7}), Value::make_dict({{"k", 1}})}))
                           .get<std::vector<sdbus::Variant>>();
    REQUIRE(mixed.size() == 8);
    CHECK(mixed[0].peekValueType() == "b");
    CHECK(mixed[1].peekValueType() == "x");
    CHECK(mixed[2].peekValueType() == "d");
    CHECK(mixed[3].peekValueType() == "s");
    CHECK(mixed[4].peekValueType() == "ai");
    CHECK(mixed[5].peekValueType() == "au");
    CHECK(mixed[6].peekValueType() == "av");
    CHECK(mixed[7].peekValueType() == "a{sv}");
}

TEST_CASE("to_variant: an empty list is an empty au, never ai", "[value]")
{
    const auto v = moat::to_variant(Value(Value::List{}));
    CHECK(v.peekValueType() == "au");
    CHECK(v.get<std::vector<std::uint32_t>>().empty());
}

TEST_CASE("to_variant: a dict is a{sv} with variant-wrapped values", "[value]")
{
    const auto v = moat::to_variant(
        Value::make_dict({{"a", 1}, {"b", "x"}, {"c", Value::invalid()}, {"d", Value::make_dict({{"e", 2.5}})}}));
    REQUIRE(v.peekValueType() == "a{sv}");
    const auto m = v.get<std::map<std::string, sdbus::Variant>>();
    REQUIRE(m.size() == 4);
    CHECK(m.at("a").peekValueType() == "i");
    CHECK(m.at("a").get<std::int32_t>() == 1);
    CHECK(m.at("b").get<std::string>() == "x");
    CHECK(m.at("c").peekValueType() == "ai");
    CHECK(m.at("d").peekValueType() == "a{sv}");
    CHECK(m.at("d").get<std::map<std::string, sdbus::Variant>>().at("e").get<double>() == 2.5);
}

TEST_CASE("to_variant: never a variant directly inside the variant", "[value]")
{
    for (const Value& v : {Value(), Value(true), Value(1), Value(5000000000), Value(1.5), Value("s"),
                           Value::make_list({1}), Value(Value::List{}), Value::make_dict({{"a", 1}})}) {
        CAPTURE(moat::repr(v));
        CHECK(sig(v) != "v");
    }
}

// ---------------------------------------------------------------------------
// Decoding, §2.2: one test per row, plus the observed consequences

TEST_CASE("from_variant: every integer width decodes to an integer", "[value]")
{
    auto check = [](const sdbus::Variant& v, std::int64_t expected) {
        const Value d = moat::from_variant(v);
        REQUIRE(d.is_int());
        CHECK(d.as_int() == expected);
    };
    check(sdbus::Variant(std::uint8_t{62}), 62);          // y
    check(sdbus::Variant(std::int16_t{-1234}), -1234);    // n
    check(sdbus::Variant(std::uint16_t{65535}), 65535);   // q
    check(sdbus::Variant(std::int32_t{-7}), -7);          // i
    check(sdbus::Variant(std::uint32_t{4294967295u}), 4294967295); // u
    check(sdbus::Variant(std::int64_t{-5000000000}), -5000000000); // x
    check(sdbus::Variant(std::uint64_t{9223372036854775807u}), std::numeric_limits<std::int64_t>::max()); // t
}

TEST_CASE("from_variant: the original integer width is forgotten (u 61, x 60, y 62 read back as i)", "[value]")
{
    CHECK(reencoded(sdbus::Variant(std::uint32_t{61})) == "i");
    CHECK(reencoded(sdbus::Variant(std::int64_t{60})) == "i");
    CHECK(reencoded(sdbus::Variant(std::uint8_t{62})) == "i");
    CHECK(reencoded(sdbus::Variant(std::int16_t{63})) == "i");
    CHECK(reencoded(sdbus::Variant(std::uint16_t{64})) == "i");
    CHECK(reencoded(sdbus::Variant(std::uint64_t{65})) == "i");
    CHECK(moat::to_variant(moat::from_variant(sdbus::Variant(std::uint32_t{61}))).get<std::int32_t>() == 61);
}

TEST_CASE("from_variant: x 1099511627776 stays x", "[value]")
{
    const sdbus::Variant in(std::int64_t{1099511627776});
    const Value d = moat::from_variant(in);
    CHECK(d.as_int() == 1099511627776);
    const auto out = moat::to_variant(d);
    CHECK(out.peekValueType() == "x");
    CHECK(out.get<std::int64_t>() == 1099511627776);
    // u above int32 comes back as x as well
    CHECK(reencoded(sdbus::Variant(std::uint32_t{4000000000u})) == "x");
}

TEST_CASE("from_variant: a t above INT64_MAX is refused", "[value]")
{
    CHECK_THROWS_AS(moat::from_variant(sdbus::Variant(std::uint64_t{9223372036854775808u})), std::invalid_argument);
    CHECK_THROWS_WITH(moat::from_variant(sdbus::Variant(std::numeric_limits<std::uint64_t>::max())),
                      Catch::Contains("int64"));
}

TEST_CASE("from_variant: d is a double, b a boolean", "[value]")
{
    const Value d = moat::from_variant(sdbus::Variant(12.5));
    REQUIRE(d.is_double());
    CHECK(d.as_double() == 12.5);
    const Value whole = moat::from_variant(sdbus::Variant(90.0));
    CHECK(whole.is_double());
    CHECK(reencoded(sdbus::Variant(90.0)) == "d");

    const Value b = moat::from_variant(sdbus::Variant(true));
    REQUIRE(b.is_bool());
    CHECK(b.as_bool());
    CHECK(moat::from_variant(sdbus::Variant(false)).is_bool());
    CHECK(reencoded(sdbus::Variant(false)) == "b");
}

TEST_CASE("from_variant: s, o and g are strings", "[value]")
{
    CHECK(same(moat::from_variant(sdbus::Variant(std::string("hello"))), Value("hello")));
    CHECK(same(moat::from_variant(sdbus::Variant(std::string())), Value("")));
    CHECK(same(moat::from_variant(sdbus::Variant(sdbus::ObjectPath("/Dc/0/Voltage"))), Value("/Dc/0/Voltage")));
    CHECK(same(moat::from_variant(sdbus::Variant(sdbus::Signature("a{sv}"))), Value("a{sv}")));
    CHECK(reencoded(sdbus::Variant(sdbus::ObjectPath("/x"))) == "s");
}

TEST_CASE("from_variant: any empty array is invalid, whatever its element type", "[value]")
{
    CHECK(moat::from_variant(sdbus::Variant(std::vector<std::int32_t>{})).is_invalid());   // ai
    CHECK(moat::from_variant(sdbus::Variant(std::vector<std::uint32_t>{})).is_invalid());  // au []: like ai []
    CHECK(moat::from_variant(sdbus::Variant(std::vector<std::string>{})).is_invalid());    // as
    CHECK(moat::from_variant(sdbus::Variant(std::vector<sdbus::Variant>{})).is_invalid()); // av
    CHECK(moat::from_variant(sdbus::Variant(std::vector<double>{})).is_invalid());         // ad
    CHECK(moat::from_variant(sdbus::Variant(std::vector<std::uint8_t>{})).is_invalid());   // ay
    CHECK(moat::from_variant(sdbus::Variant(std::vector<bool>{})).is_invalid());           // ab
    CHECK(moat::from_variant(sdbus::Variant(std::vector<std::vector<std::int32_t>>{})).is_invalid()); // aai
    // ... but a dict is no array (dbus-python's Dictionary): an empty one is an empty dict
    CHECK(same(moat::from_variant(sdbus::Variant(std::map<std::string, sdbus::Variant>{})), Value(Value::Dict{}))); // a{sv}
    CHECK(same(moat::from_variant(sdbus::Variant(std::map<std::int32_t, std::string>{})), Value(Value::Dict{})));   // a{is}
    // element types we cannot hold are fine as long as there are none
    CHECK(moat::from_variant(sdbus::Variant(std::vector<sdbus::Struct<std::int32_t, std::string>>{})).is_invalid());
    CHECK(moat::from_variant(sdbus::Variant(std::vector<sdbus::UnixFd>{})).is_invalid());

    // and the invalid value is re-published as an empty ai
    CHECK(reencoded(sdbus::Variant(std::vector<std::uint32_t>{})) == "ai");
    CHECK(reencoded(sdbus::Variant(std::vector<std::string>{})) == "ai");
}

TEST_CASE("from_variant: a non-empty array is a list of decoded elements", "[value]")
{
    // typed arrays, as dbus-flashmq sends them
    CHECK(same(moat::from_variant(sdbus::Variant(std::vector<std::int32_t>{1, 2, 3})), Value::make_list({1, 2, 3})));
    CHECK(same(moat::from_variant(sdbus::Variant(std::vector<double>{1.5, -2.0})), Value::make_list({1.5, -2.0})));
    CHECK(same(moat::from_variant(sdbus::Variant(std::vector<std::string>{"a", "b"})), Value::make_list({"a", "b"})));
    CHECK(same(moat::from_variant(sdbus::Variant(std::vector<bool>{true, false})), Value::make_list({true, false})));
    CHECK(same(moat::from_variant(sdbus::Variant(std::vector<std::uint8_t>{1, 255})), Value::make_list({1, 255})));
    CHECK(same(moat::from_variant(sdbus::Variant(std::vector<std::uint32_t>{7})), Value::make_list({7})));

    // av of mixed variants
    const std::vector<sdbus::Variant> av{sdbus::Variant(std::int32_t{1}), sdbus::Variant(std::string("a")),
                                         sdbus::Variant(2.5), sdbus::Variant(true),
                                         sdbus::Variant(std::vector<std::int32_t>{})};
    CHECK(same(moat::from_variant(sdbus::Variant(av)), Value::make_list({1, "a", 2.5, true, Value::invalid()})));

    // nested arrays: an empty inner array is an invalid element
    const std::vector<std::vector<std::int32_t>> aai{{1, 2}, {}};
    CHECK(same(moat::from_variant(sdbus::Variant(aai)), Value::make_list({Value::make_list({1, 2}), Value()})));

    // a typed array is re-published as av
    CHECK(reencoded(sdbus::Variant(std::vector<std::int32_t>{1, 2, 3})) == "av");
}

TEST_CASE("from_variant: dicts become maps, keys kept as received", "[value]")
{
    const std::map<std::string, sdbus::Variant> asv{{"/Dc/0/Voltage", sdbus::Variant(12.5)},
                                                    {"Text", sdbus::Variant(std::string("12.50V"))},
                                                    {"n", sdbus::Variant(std::vector<std::int32_t>{})}};
    CHECK(same(moat::from_variant(sdbus::Variant(asv)),
               Value::make_dict({{"/Dc/0/Voltage", 12.5}, {"Text", "12.50V"}, {"n", Value()}})));

    const std::map<std::string, std::string> ass{{"a", "x"}, {"b", ""}};
    CHECK(same(moat::from_variant(sdbus::Variant(ass)), Value::make_dict({{"a", "x"}, {"b", ""}})));

    const std::map<sdbus::ObjectPath, std::int32_t> aoi{{sdbus::ObjectPath("/p"), 3}};
    CHECK(same(moat::from_variant(sdbus::Variant(aoi)), Value::make_dict({{"/p", 3}})));

    // the GetItems / ItemsChanged shape, a{sa{sv}}
    const std::map<std::string, std::map<std::string, sdbus::Variant>> items{
        {"/Dc/0/Voltage", {{"Value", sdbus::Variant(12.5)}, {"Text", sdbus::Variant(std::string("12.5"))}}},
        {"/Serial", {{"Value", sdbus::Variant(std::vector<std::int32_t>{})}, {"Text", sdbus::Variant(std::string("---"))}}}};
    const Value decoded = moat::from_variant(sdbus::Variant(items));
    CHECK(same(decoded, Value::make_dict({
                            {"/Dc/0/Voltage", Value::make_dict({{"Value", 12.5}, {"Text", "12.5"}})},
                            {"/Serial", Value::make_dict({{"Value", Value()}, {"Text", "---"}})},
                        })));

    // dicts inside lists and lists inside dicts
    const std::vector<sdbus::Variant> av{sdbus::Variant(std::map<std::string, sdbus::Variant>{
        {"l", sdbus::Variant(std::vector<sdbus::Variant>{sdbus::Variant(std::int32_t{1})})}})};
    CHECK(same(moat::from_variant(sdbus::Variant(av)),
               Value::make_list({Value::make_dict({{"l", Value::make_list({1})}})})));
}

TEST_CASE("from_variant: nested variants are flattened (v(v(i 12)) decodes as 12)", "[value]")
{
    const auto vv = nest(sdbus::Variant(std::int32_t{12}));
    REQUIRE(vv.peekValueType() == "v");
    CHECK(same(moat::from_variant(vv), Value(12)));
    CHECK(reencoded(vv) == "i");

    const auto vvv = nest(nest(sdbus::Variant(std::string("deep"))));
    CHECK(same(moat::from_variant(vvv), Value("deep")));

    CHECK(moat::from_variant(nest(sdbus::Variant(std::vector<std::int32_t>{}))).is_invalid());

    // inside containers too
    const std::vector<sdbus::Variant> av{nest(sdbus::Variant(std::int32_t{1})), nest(nest(sdbus::Variant(2.5)))};
    CHECK(same(moat::from_variant(sdbus::Variant(av)), Value::make_list({1, 2.5})));
    const std::map<std::string, sdbus::Variant> asv{{"a", nest(sdbus::Variant(true))}};
    CHECK(same(moat::from_variant(sdbus::Variant(asv)), Value::make_dict({{"a", true}})));
}

TEST_CASE("from_variant: unsupported types throw std::invalid_argument", "[value]")
{
    // struct
    CHECK_THROWS_AS(moat::from_variant(sdbus::Variant(sdbus::Struct<std::int32_t, std::string>(1, "a"))),
                    std::invalid_argument);
    CHECK_THROWS_WITH(moat::from_variant(sdbus::Variant(sdbus::Struct<std::int32_t, std::string>(1, "a"))),
                      Catch::Contains("struct") && Catch::Contains("(is)"));
    // non-empty array of structs
    CHECK_THROWS_AS(moat::from_variant(sdbus::Variant(std::vector<sdbus::Struct<std::int32_t, std::int32_t>>{{1, 2}})),
                    std::invalid_argument);
    // unix fds
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    CHECK_THROWS_WITH(moat::from_variant(sdbus::Variant(sdbus::UnixFd(fd))), Catch::Contains("unix fd"));
    CHECK_THROWS_AS(moat::from_variant(sdbus::Variant(std::vector<sdbus::UnixFd>{sdbus::UnixFd(fd)})),
                    std::invalid_argument);
    ::close(fd);
    // dicts with non-string keys (only when there are entries)
    CHECK_THROWS_WITH(moat::from_variant(sdbus::Variant(std::map<std::int32_t, std::string>{{1, "a"}})),
                      Catch::Contains("key") && Catch::Contains("a{is}"));
    // the empty variant (not a D-Bus value at all)
    CHECK_THROWS_AS(moat::from_variant(sdbus::Variant()), std::invalid_argument);
    // deep inside something otherwise fine
    const std::map<std::string, sdbus::Variant> asv{
        {"ok", sdbus::Variant(1.0)},
        {"bad", sdbus::Variant(std::vector<sdbus::Variant>{sdbus::Variant(sdbus::Struct<double, double>(1.0, 2.0))})}};
    CHECK_THROWS_AS(moat::from_variant(sdbus::Variant(asv)), std::invalid_argument);
}

TEST_CASE("from_variant: a variant that failed to decode is still usable", "[value]")
{
    const sdbus::Variant v(std::map<std::int32_t, sdbus::Variant>{{1, sdbus::Variant(std::string("a"))}});
    CHECK_THROWS_AS(moat::from_variant(v), std::invalid_argument);
    CHECK(v.peekValueType() == "a{iv}");
    CHECK(v.get<std::map<std::int32_t, sdbus::Variant>>().at(1).get<std::string>() == "a");
    CHECK_THROWS_AS(moat::from_variant(v), std::invalid_argument);

    const sdbus::Variant fine(std::vector<sdbus::Variant>{sdbus::Variant(1.0)});
    CHECK(same(moat::from_variant(fine), Value::make_list({1.0})));
    CHECK(same(moat::from_variant(fine), Value::make_list({1.0}))); // twice
}

TEST_CASE("read_value: decodes a bare value at a message's read position", "[value]")
{
    CHECK(same(read_back(sdbus::Variant(std::int32_t{5})), Value(5)));
    CHECK(same(read_back(sdbus::Variant(std::uint8_t{5})), Value(5)));
    CHECK(read_back(sdbus::Variant(std::vector<std::uint32_t>{})).is_invalid());
    CHECK(same(read_back(nest(sdbus::Variant(std::string("x")))), Value("x")));
    const std::map<std::string, sdbus::Variant> asv{{"a", sdbus::Variant(std::int32_t{1})}};
    CHECK(same(read_back(sdbus::Variant(asv)), Value::make_dict({{"a", 1}})));
    CHECK_THROWS_WITH(read_back(sdbus::Variant(std::int32_t{5}), "a{"), Catch::Contains("malformed"));
    CHECK_THROWS_WITH(read_back(sdbus::Variant(std::int32_t{5}), "ii"), Catch::Contains("single complete type"));
    CHECK_THROWS_AS(read_back(sdbus::Variant(std::int32_t{5}), "(i)"), std::invalid_argument);
}

TEST_CASE("to_variant/from_variant round trip keeps kind and value", "[value]")
{
    const Value values[] = {
        Value(),
        Value(true),
        Value(false),
        Value(0),
        Value(-1),
        Value(2147483647),
        Value(std::int64_t{-2147483648}),
        Value(std::int64_t{2147483648}),
        Value(std::int64_t{5000000000}),
        Value(std::numeric_limits<std::int64_t>::min()),
        Value(std::numeric_limits<std::int64_t>::max()),
        Value(0.0),
        Value(-0.0),
        Value(90.0),
        Value(1e-300),
        Value(std::numeric_limits<double>::infinity()),
        Value(std::nan("")),
        Value(""),
        Value("text with 'quotes' and ünïcode"),
        Value::make_list({1, 2, 3}),
        Value::make_list({"a", 1.5, true, Value(), Value::make_list({Value::make_list({2})})}),
        Value::make_dict({{"a", 1}, {"b", "x"}, {"c", Value::make_dict({{"d", Value::make_list({1.0})}})}}),
        Value::make_dict({{"", Value()}}),
    };
    for (const auto& v : values) {
        CAPTURE(moat::repr(v));
        const Value back = moat::from_variant(moat::to_variant(v));
        CHECK(same(back, v));
        CHECK(sig(back) == sig(v));
    }
    // The asymmetry: an empty list encodes as an empty au, which every Venus
    // reader (and from_variant) takes as invalid (§2.2); an empty dict stays a dict.
    CHECK(sig(Value(Value::List{})) == "au");
    CHECK(moat::from_variant(moat::to_variant(Value(Value::List{}))).is_invalid());
    CHECK(sig(Value(Value::Dict{})) == "a{sv}");
    CHECK(same(moat::from_variant(moat::to_variant(Value(Value::Dict{}))), Value(Value::Dict{})));
    CHECK(same(moat::from_variant(moat::to_variant(Value::make_list({1, Value::make_list({})}))),
               Value::make_list({1, Value()})));
}

// ---------------------------------------------------------------------------
// Equality, §2.3

TEST_CASE("equality: numeric across int, double and bool (1 == 1.0 == True, 0 == 0.0 == False)", "[value]")
{
    CHECK(Value(1) == Value(1.0));
    CHECK(Value(1.0) == Value(true));
    CHECK(Value(1) == Value(true));
    CHECK(Value(true) == Value(1));
    CHECK(Value(0) == Value(0.0));
    CHECK(Value(0.0) == Value(false));
    CHECK(Value(0) == Value(false));
    CHECK(Value(-0.0) == Value(0));
    CHECK(Value(-0.0) == Value(0.0));
    CHECK(Value(5000000000) == Value(5000000000.0));
    CHECK(Value(2) != Value(true));
    CHECK(Value(2) != Value(2.5));
    CHECK(Value(1.5) != Value(true));
    CHECK(Value(true) != Value(false));
    CHECK(Value(3) == 3);
    CHECK(3.0 == Value(3));
}

TEST_CASE("equality: integers and doubles compare exactly, like Python", "[value]")
{
    constexpr std::int64_t two53 = std::int64_t{1} << 53;
    CHECK(Value(two53) == Value(9007199254740992.0));
    CHECK(Value(two53 + 1) != Value(9007199254740992.0)); // 2**53 + 1 != 2.0**53
    CHECK(Value(std::numeric_limits<std::int64_t>::max()) != Value(9223372036854775808.0));
    CHECK(Value(std::numeric_limits<std::int64_t>::min()) == Value(-9223372036854775808.0));
    CHECK(Value(0) != Value(std::numeric_limits<double>::infinity()));
    CHECK(Value(std::numeric_limits<double>::infinity()) == Value(std::numeric_limits<double>::infinity()));
    CHECK(Value(std::nan("")) != Value(std::nan("")));
    CHECK(Value(std::nan("")) != Value(0));
}

TEST_CASE("equality: a string never equals a number", "[value]")
{
    CHECK(Value("1") != Value(1));
    CHECK(Value("1.0") != Value(1.0));
    CHECK(Value("True") != Value(true));
    CHECK(Value("") != Value(0));
    CHECK(Value("a") == Value("a"));
    CHECK(Value("a") != Value("A"));
    CHECK(Value("") == Value(""));
}

TEST_CASE("equality: invalid equals only invalid", "[value]")
{
    CHECK(Value() == Value::invalid());
    CHECK(Value() != Value(0));
    CHECK(Value() != Value(false));
    CHECK(Value() != Value(""));
    CHECK(Value() != Value("---"));
    CHECK(Value() != Value(Value::List{}));
    CHECK(Value() != Value(Value::Dict{}));
    CHECK(Value(0.0) != Value());
}

TEST_CASE("equality: lists and dicts compare element-wise", "[value]")
{
    CHECK(Value::make_list({1, 2, 3}) == Value::make_list({1.0, 2, 3}));
    CHECK(Value::make_list({1, 0}) == Value::make_list({true, false}));
    CHECK(Value::make_list({1, 2}) != Value::make_list({1, 2, 3}));
    CHECK(Value::make_list({1, 2}) != Value::make_list({2, 1}));
    CHECK(Value::make_list({"1"}) != Value::make_list({1}));
    CHECK(Value::make_list({Value()}) == Value::make_list({Value()}));
    CHECK(Value(Value::List{}) == Value(Value::List{}));
    CHECK(Value::make_list({Value::make_list({1})}) == Value::make_list({Value::make_list({1.0})}));

    CHECK(Value::make_dict({{"a", 1}, {"b", "x"}}) == Value::make_dict({{"b", "x"}, {"a", 1.0}}));
    CHECK(Value::make_dict({{"a", 1}}) != Value::make_dict({{"b", 1}}));
    CHECK(Value::make_dict({{"a", 1}}) != Value::make_dict({{"a", 2}}));
    CHECK(Value::make_dict({{"a", 1}}) != Value::make_dict({{"a", 1}, {"b", 1}}));
    CHECK(Value::make_dict({{"a", 1}}) != Value::make_list({1}));
    CHECK(Value(Value::Dict{}) != Value(Value::List{}));
}

TEST_CASE("equality decides 'unchanged': an equal write keeps the stored type", "[value]")
{
    // store 90.0, write i 90: equal, so the item keeps d 90.0
    const Value stored_d(90.0);
    const Value written_i = moat::from_variant(sdbus::Variant(std::int32_t{90}));
    CHECK(stored_d == written_i);
    // store False, write i 0: equal, the item keeps b false
    const Value stored_b(false);
    const Value written_0 = moat::from_variant(sdbus::Variant(std::int32_t{0}));
    CHECK(stored_b == written_0);
    // writing au [] over an invalid value changes nothing either
    CHECK(Value() == moat::from_variant(sdbus::Variant(std::vector<std::uint32_t>{})));
    // but a written string "90" is a change
    CHECK(stored_d != moat::from_variant(sdbus::Variant(std::string("90"))));
}

// ---------------------------------------------------------------------------
// Text, §2.4

TEST_CASE("text: invalid is three hyphens", "[value]")
{
    CHECK(moat::text(Value()) == "---");
    CHECK(moat::text(moat::from_variant(sdbus::Variant(std::vector<std::string>{}))) == "---");
}

TEST_CASE("text: integers in decimal, booleans True/False, strings as themselves", "[value]")
{
    CHECK(moat::text(Value(0)) == "0");
    CHECK(moat::text(Value(45057)) == "45057");
    CHECK(moat::text(Value(-3)) == "-3");
    CHECK(moat::text(Value(5000000000)) == "5000000000");
    CHECK(moat::text(Value(std::numeric_limits<std::int64_t>::min())) == "-9223372036854775808");
    CHECK(moat::text(Value(true)) == "True");
    CHECK(moat::text(Value(false)) == "False");
    CHECK(moat::text(Value("abc")) == "abc");
    CHECK(moat::text(Value("")) == "");
    CHECK(moat::text(Value("it's")) == "it's");
}

TEST_CASE("text: doubles as Python's repr", "[value]")
{
    struct Case {
        double d;
        const char* text;
    };
    const Case cases[] = {
        // the spec's examples
        {25.0, "25.0"},
        {100.0, "100.0"},
        {-0.0, "-0.0"},
        {0.1, "0.1"},
        {2.0 / 3.0, "0.6666666666666666"},
        {1e-05, "1e-05"},
        {1.5e-07, "1.5e-07"},
        {0.0001, "0.0001"},
        {1e15, "1000000000000000.0"},
        {1e16, "1e+16"},
        {1.2345678901234568e+17, "1.2345678901234568e+17"},
        {std::numeric_limits<double>::infinity(), "inf"},
        {std::nan(""), "nan"},
        // more, checked against CPython 3.11
        {0.0, "0.0"},
        {-std::numeric_limits<double>::infinity(), "-inf"},
        {12.5, "12.5"},
        {-3.27, "-3.27"},
        {0.001, "0.001"},
        {5e-05, "5e-05"},
        {1.5e-4, "0.00015"},
        {1e-4 * 1.5, "0.00015000000000000001"},
        {12345.678, "12345.678"},
        {123456789.123, "123456789.123"},
        {9007199254740993.0, "9007199254740992.0"},
        {1e22, "1e+22"},
        {1e100, "1e+100"},
        {5e-324, "5e-324"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {-1e-7, "-1e-07"},
        {-123.0, "-123.0"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.text);
        CHECK(moat::text(Value(c.d)) == c.text);
        CHECK(moat::python_float_repr(c.d) == c.text);
    }
}

TEST_CASE("text: lists and dicts as Python repr", "[value]")
{
    CHECK(moat::text(Value::make_list({1, 2, 3})) == "[1, 2, 3]");
    CHECK(moat::text(Value::make_list({"a", "b"})) == "['a', 'b']");
    CHECK(moat::text(Value::make_dict({{"a", 1}, {"b", "x"}})) == "{'a': 1, 'b': 'x'}");
    CHECK(moat::text(Value(Value::List{})) == "[]");
    CHECK(moat::text(Value(Value::Dict{})) == "{}");
    CHECK(moat::text(Value::make_list({Value(), true, 2.5, Value(Value::List{}), Value::make_dict({{"k", 25.0}})})) ==
          "[None, True, 2.5, [], {'k': 25.0}]");
    // Python's string repr: quote choice and escapes
    CHECK(moat::text(Value::make_list({"it's", "a\"b", "both'\"", "tab\there\\", "\x01", "\n"})) ==
          R"(["it's", 'a"b', 'both\'"', 'tab\there\\', '\x01', '\n'])");
    CHECK(moat::text(Value::make_list({"ünï"})) == "['ünï']");
}

TEST_CASE("repr and fmt formatting for log lines", "[value]")
{
    CHECK(moat::repr(Value("abc")) == "'abc'");
    CHECK(moat::repr(Value("")) == "''");
    CHECK(moat::repr(Value()) == "---");
    CHECK(moat::repr(Value(25.0)) == "25.0");
    CHECK(moat::repr(Value::make_list({"a"})) == "['a']");

    CHECK(fmt::format("{} → {}", Value(90.0), Value()) == "90.0 → ---");
    CHECK(fmt::format("{} → {}", Value("a"), Value(true)) == "a → True");
    CHECK(fmt::format("{:r} → {:r}", Value(""), Value("x")) == "'' → 'x'");
    CHECK(fmt::format("{}", Value::make_dict({{"a", Value::make_list({1})}})) == "{'a': [1]}");
}
