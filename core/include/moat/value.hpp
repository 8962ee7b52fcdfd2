// The Venus "BusItem value" model, as velib and dbus-python put values on the bus.
//
// A Value is what a com.victronenergy.BusItem item holds: invalid, a boolean,
// an integer, a double, a string, a list or a string-keyed dict. It is
// converted to and from the D-Bus variant with the Venus rules (to_variant,
// from_variant), compares like Python's == and renders like Python's str() (text).
#pragma once

#include "moat/export.hpp"

#include <algorithm>
#include <cstdint>
#include <fmt/format.h>
#include <initializer_list>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace moat {

/// A BusItem value. Cheap to move; copies are deep.
class MOAT_API Value {
public:
    /// Non-empty lists go on the wire as `av`, empty ones as `au`.
    using List = std::vector<Value>;
    /// Goes on the wire as `a{sv}`. Sorted by key (Python keeps insertion order).
    using Dict = std::map<std::string, Value>;

    /// The alternatives, in the order of the internal variant.
    enum class Kind { invalid, boolean, integer, floating, string, list, dict };

    /// Invalid ("no value"; on the wire an empty `ai`, as text `---`).
    Value() noexcept = default;
    /// The invalid value, spelled out.
    static Value invalid() noexcept { return Value(); }

    /// A boolean (`b`). Checked before integers: `Value(true)` is a boolean.
    Value(bool b) noexcept : v_(b) {}
    /// An integer from any integral type except bool and the character types.
    /// Throws std::out_of_range for an unsigned value above INT64_MAX (velib
    /// raises on integers outside int64 too).
    template <class T>
        requires(std::is_integral_v<T> && !std::is_same_v<T, bool> && !std::is_same_v<T, char> &&
                 !std::is_same_v<T, wchar_t> && !std::is_same_v<T, char8_t> &&
                 !std::is_same_v<T, char16_t> && !std::is_same_v<T, char32_t>)
    Value(T i) : v_(checked_int(i)) {}
    /// A double (`d`); floats are widened.
    Value(double d) noexcept : v_(d) {}
    Value(float d) noexcept : v_(static_cast<double>(d)) {}
    /// A string (`s`). The empty string is a valid value, distinct from invalid.
    Value(std::string s) noexcept : v_(std::move(s)) {}
    Value(std::string_view s) : v_(std::string(s)) {}
    /// A string from a C string; a null pointer gives the invalid value.
    Value(const char* s) : v_(s ? Storage(std::string(s)) : Storage()) {}
    /// A list.
    Value(List l) noexcept : v_(std::move(l)) {}
    /// A dict with string keys.
    Value(Dict d) noexcept : v_(std::move(d)) {}

    /// A list from its elements: `Value::make_list({1, "a", 2.5})`.
    static Value make_list(std::initializer_list<Value> items) { return Value(List(items)); }
    /// A dict from key/value pairs: `Value::make_dict({{"a", 1}, {"b", "x"}})`.
    static Value make_dict(std::initializer_list<Dict::value_type> items) { return Value(Dict(items)); }

    /// Which alternative this value holds.
    Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }

    bool is_invalid() const noexcept { return kind() == Kind::invalid; }
    bool is_valid() const noexcept { return !is_invalid(); }
    bool is_bool() const noexcept { return kind() == Kind::boolean; }
    bool is_int() const noexcept { return kind() == Kind::integer; }
    bool is_double() const noexcept { return kind() == Kind::floating; }
    bool is_string() const noexcept { return kind() == Kind::string; }
    bool is_list() const noexcept { return kind() == Kind::list; }
    bool is_dict() const noexcept { return kind() == Kind::dict; }
    /// True for integers, doubles and booleans (Python's numeric tower).
    bool is_number() const noexcept { return is_int() || is_double() || is_bool(); }

    /// The held value. Each throws std::logic_error when the kind differs
    /// (no conversion: `Value(1).as_double()` throws; use as_number()).
    bool as_bool() const;
    std::int64_t as_int() const;
    double as_double() const;
    const std::string& as_string() const;
    const List& as_list() const;
    const Dict& as_dict() const;

    /// Any number as a double (int, double, bool → 0/1); nullopt otherwise.
    /// Readers should use this: publishers switch between `i` and `d`.
    std::optional<double> as_number() const noexcept;

    /// Python `==`: numeric across int, double and bool (1 == 1.0 ==
    /// true; an integer equals a double only when exactly equal; NaN equals
    /// nothing, not even NaN); strings equal only strings; lists and dicts
    /// compare element-wise; invalid equals only invalid.
    friend MOAT_API bool operator==(const Value& a, const Value& b) noexcept;

private:
    using Storage = std::variant<std::monostate, bool, std::int64_t, double, std::string, List, Dict>;

    template <class T> static std::int64_t checked_int(T i)
    {
        if constexpr (std::is_unsigned_v<T> && sizeof(T) >= sizeof(std::int64_t)) {
            if (i > static_cast<T>(INT64_MAX))
                throw std::out_of_range("moat::Value: integer " + std::to_string(i) + " does not fit in int64");
        }
        return static_cast<std::int64_t>(i);
    }

    Storage v_;
};

/// "invalid", "bool", "int", "double", "string", "list" or "dict".
MOAT_API std::string_view kind_name(Value::Kind kind) noexcept;
inline std::string_view kind_name(const Value& v) noexcept { return kind_name(v.kind()); }

/// The default text of an item (no formatter): invalid → `---`; otherwise
/// Python's str(): integers in decimal, `True`/`False`, doubles as Python's
/// repr (`25.0`, `1e-05`, `1e+16`, `inf`, `nan`), strings as themselves,
/// lists and dicts as Python repr (`[1, 'a']`, `{'a': 1}`, invalid elements
/// as `None`). Formatters and the `/ProductId` hex rule belong to the item.
MOAT_API std::string text(const Value& value);

/// Python repr() of a double: shortest round-trip digits, fixed notation
/// when the decimal exponent is in -4..15 (always with a `.`), otherwise
/// exponent notation (`1e-05`, `1.5e+16`).
MOAT_API std::string python_float_repr(double d);

/// JSON for a value (for `--json` outputs): invalid → null, numbers as
/// Python prints them (a non-finite double → null), strings escaped, lists
/// and dicts with Python's json.dumps separators (`[1, 2]`, `{"a": 1}`).
MOAT_API std::string to_json(const Value& value);
/// A JSON string literal: quotes, backslash and control characters escaped.
MOAT_API std::string json_string(std::string_view s);

/// For log lines: like text(), but a string is quoted Python-style (`'abc'`,
/// `''`) so that empty and blank strings are visible.
MOAT_API std::string repr(const Value& value);

} // namespace moat

/// `fmt::format("{}", value)` gives text(value); `{:r}` gives repr(value).
template <> struct fmt::formatter<moat::Value> {
    bool quoted = false;

    constexpr auto parse(fmt::format_parse_context& ctx) -> decltype(ctx.begin())
    {
        auto it = ctx.begin();
        if (it != ctx.end() && *it == 'r') {
            quoted = true;
            ++it;
        }
        if (it != ctx.end() && *it != '}')
            throw fmt::format_error("invalid format for moat::Value (use {} or {:r})");
        return it;
    }

    template <class FormatContext> auto format(const moat::Value& v, FormatContext& ctx) const -> decltype(ctx.out())
    {
        const std::string s = quoted ? moat::repr(v) : moat::text(v);
        return std::copy(s.begin(), s.end(), ctx.out());
    }
};
