// The Venus BusItem value model (shared/specs/venus-dbus.md §2).
#include "value_dbus.hpp"

#include <sdbus-c++/sdbus-c++.h>

#include <array>
#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>

namespace moat {

// ---------------------------------------------------------------------------
// Accessors

namespace {

[[noreturn]] void wrong_kind(const char* accessor, Value::Kind kind)
{
    throw std::logic_error(fmt::format("moat::Value::{}() called on a value of kind {}", accessor, kind_name(kind)));
}

} // namespace

std::string_view kind_name(Value::Kind kind) noexcept
{
    switch (kind) {
    case Value::Kind::invalid: return "invalid";
    case Value::Kind::boolean: return "bool";
    case Value::Kind::integer: return "int";
    case Value::Kind::floating: return "double";
    case Value::Kind::string: return "string";
    case Value::Kind::list: return "list";
    case Value::Kind::dict: return "dict";
    }
    return "?";
}

bool Value::as_bool() const
{
    if (!is_bool())
        wrong_kind("as_bool", kind());
    return std::get<bool>(v_);
}

std::int64_t Value::as_int() const
{
    if (!is_int())
        wrong_kind("as_int", kind());
    return std::get<std::int64_t>(v_);
}

double Value::as_double() const
{
    if (!is_double())
        wrong_kind("as_double", kind());
    return std::get<double>(v_);
}

const std::string& Value::as_string() const
{
    if (!is_string())
        wrong_kind("as_string", kind());
    return std::get<std::string>(v_);
}

const Value::List& Value::as_list() const
{
    if (!is_list())
        wrong_kind("as_list", kind());
    return std::get<List>(v_);
}

const Value::Dict& Value::as_dict() const
{
    if (!is_dict())
        wrong_kind("as_dict", kind());
    return std::get<Dict>(v_);
}

std::optional<double> Value::as_number() const noexcept
{
    switch (kind()) {
    case Kind::boolean: return std::get<bool>(v_) ? 1.0 : 0.0;
    case Kind::integer: return static_cast<double>(std::get<std::int64_t>(v_));
    case Kind::floating: return std::get<double>(v_);
    default: return std::nullopt;
    }
}

// ---------------------------------------------------------------------------
// Equality (§2.3)

namespace {

// Python compares int and float exactly (no rounding of the int to double):
// 2**53 + 1 != 2.0**53.
bool int_equals_double(std::int64_t i, double d) noexcept
{
    // [-2^63, 2^63) is exactly the range of doubles that convert to int64.
    constexpr double two63 = 9223372036854775808.0;
    if (!(d >= -two63 && d < two63)) // also false for NaN and infinities
        return false;
    if (std::trunc(d) != d)
        return false;
    return static_cast<std::int64_t>(d) == i;
}

} // namespace

bool operator==(const Value& a, const Value& b) noexcept
{
    using K = Value::Kind;
    if (a.is_number() && b.is_number()) {
        const bool a_double = a.is_double();
        const bool b_double = b.is_double();
        if (a_double && b_double)
            return std::get<double>(a.v_) == std::get<double>(b.v_);
        // Booleans count as the integers 0 and 1.
        auto as_i = [](const Value& v) {
            return v.is_bool() ? std::int64_t{std::get<bool>(v.v_)} : std::get<std::int64_t>(v.v_);
        };
        if (!a_double && !b_double)
            return as_i(a) == as_i(b);
        if (a_double)
            return int_equals_double(as_i(b), std::get<double>(a.v_));
        return int_equals_double(as_i(a), std::get<double>(b.v_));
    }
    if (a.kind() != b.kind())
        return false;
    switch (a.kind()) {
    case K::invalid: return true;
    case K::string: return std::get<std::string>(a.v_) == std::get<std::string>(b.v_);
    case K::list: {
        const auto& x = std::get<Value::List>(a.v_);
        const auto& y = std::get<Value::List>(b.v_);
        if (x.size() != y.size())
            return false;
        for (std::size_t i = 0; i < x.size(); ++i)
            if (!(x[i] == y[i]))
                return false;
        return true;
    }
    case K::dict: {
        const auto& x = std::get<Value::Dict>(a.v_);
        const auto& y = std::get<Value::Dict>(b.v_);
        if (x.size() != y.size())
            return false;
        // Both maps are sorted by key: equal key sets line up pairwise.
        for (auto i = x.begin(), j = y.begin(); i != x.end(); ++i, ++j)
            if (i->first != j->first || !(i->second == j->second))
                return false;
        return true;
    }
    default: return false; // numbers handled above
    }
}

// ---------------------------------------------------------------------------
// Encoding (§2.1)

sdbus::Variant to_variant(const Value& value)
{
    switch (value.kind()) {
    case Value::Kind::invalid: return sdbus::Variant(std::vector<std::int32_t>{});
    case Value::Kind::boolean: return sdbus::Variant(value.as_bool());
    case Value::Kind::integer: {
        const std::int64_t i = value.as_int();
        if (i >= std::numeric_limits<std::int32_t>::min() && i <= std::numeric_limits<std::int32_t>::max())
            return sdbus::Variant(static_cast<std::int32_t>(i));
        return sdbus::Variant(i);
    }
    case Value::Kind::floating: return sdbus::Variant(value.as_double());
    case Value::Kind::string: return sdbus::Variant(value.as_string());
    case Value::Kind::list: {
        const auto& list = value.as_list();
        if (list.empty()) // not `ai`: that would read back as invalid
            return sdbus::Variant(std::vector<std::uint32_t>{});
        std::vector<sdbus::Variant> items;
        items.reserve(list.size());
        for (const auto& item : list)
            items.push_back(to_variant(item));
        return sdbus::Variant(items);
    }
    case Value::Kind::dict: {
        std::map<std::string, sdbus::Variant> items;
        for (const auto& [key, item] : value.as_dict())
            items.emplace(key, to_variant(item));
        return sdbus::Variant(items);
    }
    }
    throw std::logic_error("moat::to_variant: bad value kind");
}

// ---------------------------------------------------------------------------
// Decoding (§2.2)

namespace {

constexpr int max_signature_depth = 64; // D-Bus allows 32 arrays + 32 structs

bool is_basic_type(char c)
{
    return std::string_view("ybnqiuxtdsogh").find(c) != std::string_view::npos;
}

// Index just past the single complete type that starts at `pos`; throws on a
// malformed signature.
std::size_t complete_type_end(std::string_view sig, std::size_t pos, int depth)
{
    auto bad = [&]() -> std::size_t {
        throw std::invalid_argument(fmt::format("malformed D-Bus signature '{}'", sig));
    };
    if (pos >= sig.size() || depth > max_signature_depth)
        return bad();
    const char c = sig[pos];
    if (is_basic_type(c) || c == 'v')
        return pos + 1;
    if (c == 'a') {
        if (pos + 1 < sig.size() && sig[pos + 1] == '{') {
            // Dict entry: basic key, one complete value type, '}'.
            if (pos + 2 >= sig.size() || !is_basic_type(sig[pos + 2]))
                return bad();
            const std::size_t end = complete_type_end(sig, pos + 3, depth + 1);
            if (end >= sig.size() || sig[end] != '}')
                return bad();
            return end + 1;
        }
        return complete_type_end(sig, pos + 1, depth + 1);
    }
    if (c == '(') {
        std::size_t p = pos + 1;
        if (p < sig.size() && sig[p] == ')')
            return bad();
        while (p < sig.size() && sig[p] != ')')
            p = complete_type_end(sig, p, depth + 1);
        if (p >= sig.size())
            return bad();
        return p + 1;
    }
    return bad();
}

void check_single_type(std::string_view sig)
{
    if (complete_type_end(sig, 0, 0) != sig.size())
        throw std::invalid_argument(fmt::format("D-Bus signature '{}' is not a single complete type", sig));
}

// Walks one value through sdbus::Message's read API, driven by its signature.
class Reader {
public:
    Reader(sdbus::Message& msg, std::string_view top, bool structs = false) : msg_(msg), top_(top), structs_(structs) {}

    // Reads one complete item of type `type`; the caller knows it is there.
    Value read(std::string_view type)
    {
        switch (type.front()) {
        case 'y': return basic<std::uint8_t>();
        case 'b': return Value(basic<bool>());
        case 'n': return basic<std::int16_t>();
        case 'q': return basic<std::uint16_t>();
        case 'i': return basic<std::int32_t>();
        case 'u': return basic<std::uint32_t>();
        case 'x': return basic<std::int64_t>();
        case 't': {
            const std::uint64_t u = basic<std::uint64_t>();
            if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                throw std::invalid_argument(
                    fmt::format("D-Bus value {} (type 't') does not fit in int64 (signature '{}')", u, top_));
            return static_cast<std::int64_t>(u);
        }
        case 'd': return basic<double>();
        case 's': return basic<std::string>();
        case 'o': return std::string(basic<sdbus::ObjectPath>());
        case 'g': return std::string(basic<sdbus::Signature>());
        case 'v': return read_variant();
        case 'a': return read_array(type);
        case 'h': throw unsupported("unix fd 'h'");
        case '(':
            if (!structs_) throw unsupported(fmt::format("struct '{}'", type));
            return read_struct(type);
        default: throw unsupported(fmt::format("'{}'", type));
        }
    }

private:
    std::invalid_argument unsupported(std::string_view what) const
    {
        return std::invalid_argument(
            fmt::format("unsupported D-Bus type {} in a BusItem value (signature '{}')", what, top_));
    }

    void check()
    {
        if (!msg_)
            throw std::invalid_argument(fmt::format("truncated D-Bus value (signature '{}')", top_));
    }

    // sdbus-c++ 1.2.0's peekType() gives type "\0" at the end of a container
    // (and contents "" for basic types), which is what this relies on.
    bool at_end()
    {
        std::string type, contents;
        msg_.peekType(type, contents);
        return type.empty() || type[0] == '\0';
    }

    template <class T> T basic()
    {
        T x{};
        msg_ >> x;
        check();
        return x;
    }

    Value read_variant()
    {
        std::string type, contents;
        msg_.peekType(type, contents);
        if (type != "v")
            throw std::invalid_argument(fmt::format("malformed D-Bus value (signature '{}')", top_));
        check_single_type(contents);
        msg_.enterVariant(contents);
        check();
        Value v = read(contents); // v(v(i 12)) flattens to 12
        msg_.exitVariant();
        return v;
    }

    Value read_array(std::string_view type)
    {
        const std::string element(type.substr(1));
        msg_.enterContainer(element);
        check();
        Value result;
        if (element.front() == '{') {
            const std::string entry = element.substr(1, element.size() - 2);
            const char key_type = entry.front();
            const std::string_view value_type = std::string_view(entry).substr(1);
            Value::Dict dict;
            while (!at_end()) {
                if (key_type != 's' && key_type != 'o' && key_type != 'g')
                    throw unsupported(fmt::format("dict key '{}' (only string keys)", key_type));
                msg_.enterDictEntry(entry);
                check();
                std::string key = read(std::string_view(&key_type, 1)).as_string();
                Value item = read(value_type);
                msg_.exitDictEntry();
                dict.insert_or_assign(std::move(key), std::move(item));
            }
            // An empty dict stays a dict (dbus-python's Dictionary is no
            // Array): only an empty array of a plain element type is invalid.
            result = Value(std::move(dict));
        } else {
            Value::List list;
            while (!at_end())
                list.push_back(read(element));
            if (!list.empty()) // any empty array is invalid, whatever its element type
                result = Value(std::move(list));
        }
        msg_.clearFlags();
        msg_.exitContainer();
        return result;
    }

    // A struct is the List of its members (method arguments only).
    Value read_struct(std::string_view type)
    {
        const std::string members(type.substr(1, type.size() - 2));
        msg_.enterStruct(members);
        check();
        Value::List list;
        for (std::size_t pos = 0; pos < members.size();) {
            const std::size_t end = complete_type_end(members, pos, 0);
            list.push_back(read(std::string_view(members).substr(pos, end - pos)));
            pos = end;
        }
        msg_.exitStruct();
        return Value(std::move(list));
    }

    sdbus::Message& msg_;
    std::string_view top_;
    bool structs_;
};

// sdbus::Variant only lets us into its message through get<T>(), which
// enters the variant with signature_of<T>::str() and then calls
// `msg >> T&`. This T takes its signature from a thread-local set just
// before the call, and its operator>> runs the Reader.
thread_local std::string variant_reader_signature;

struct VariantReader {
    Value value;
};

} // namespace
} // namespace moat

template <> struct sdbus::signature_of<moat::VariantReader> {
    // No is_valid member: that keeps Variant's conversion operator away.
    static const std::string str() { return moat::variant_reader_signature; }
};

namespace moat {
namespace {

sdbus::Message& operator>>(sdbus::Message& msg, VariantReader& out)
{
    const std::string signature = variant_reader_signature;
    try {
        msg.clearFlags();
        out.value = Reader(msg, signature).read(signature);
    } catch (...) {
        // Leave the variant readable: get<T>() only rewinds the top level.
        msg.clearFlags();
        msg.rewind(true);
        throw;
    }
    return msg;
}

} // namespace

Value from_variant(const sdbus::Variant& variant)
{
    if (variant.isEmpty())
        throw std::invalid_argument("empty D-Bus variant (no value)");
    std::string signature = variant.peekValueType();
    check_single_type(signature);
    variant_reader_signature = std::move(signature);
    return variant.get<VariantReader>().value;
}

Value read_value(sdbus::Message& msg, std::string_view signature)
{
    check_single_type(signature);
    return Reader(msg, signature).read(signature);
}

Value read_value(sdbus::Message& msg, std::string_view signature, bool structs_as_lists)
{
    check_single_type(signature);
    return Reader(msg, signature, structs_as_lists).read(signature);
}

std::vector<std::string> split_signature(std::string_view signature)
{
    std::vector<std::string> out;
    for (std::size_t pos = 0; pos < signature.size();) {
        const std::size_t end = complete_type_end(signature, pos, 0);  // throws when malformed
        out.emplace_back(signature.substr(pos, end - pos));
        pos = end;
    }
    return out;
}

// ---------------------------------------------------------------------------
// JSON

std::string json_string(std::string_view s)
{
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) out += fmt::format("\\u{:04x}", c);
            else out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string to_json(const Value& v)
{
    switch (v.kind()) {
    case Value::Kind::invalid: return "null";
    case Value::Kind::boolean: return v.as_bool() ? "true" : "false";
    case Value::Kind::integer: return std::to_string(v.as_int());
    case Value::Kind::floating: return std::isfinite(v.as_double()) ? python_float_repr(v.as_double()) : "null";
    case Value::Kind::string: return json_string(v.as_string());
    case Value::Kind::list: {
        std::string s = "[";
        for (const auto& x : v.as_list()) s += (s.size() > 1 ? ", " : "") + to_json(x);
        return s + "]";
    }
    case Value::Kind::dict: {
        std::string s = "{";
        for (const auto& [k, x] : v.as_dict()) s += (s.size() > 1 ? ", " : "") + json_string(k) + ": " + to_json(x);
        return s + "}";
    }
    }
    return "null";
}

// ---------------------------------------------------------------------------
// Text (§2.4)

std::string python_float_repr(double d)
{
    if (std::isnan(d))
        return "nan";
    if (std::isinf(d))
        return d < 0 ? "-inf" : "inf";

    // Shortest round-trip digits in scientific form: "-1.2345e+17", "0e+00".
    std::array<char, 64> buf{};
    const auto res = std::to_chars(buf.data(), buf.data() + buf.size(), d, std::chars_format::scientific);
    if (res.ec != std::errc())
        return fmt::format("{}", d);
    const std::string_view sci(buf.data(), static_cast<std::size_t>(res.ptr - buf.data()));

    std::string out;
    std::size_t pos = 0;
    if (sci[pos] == '-') {
        out += '-';
        ++pos;
    }
    std::string digits;
    while (pos < sci.size() && sci[pos] != 'e') {
        if (sci[pos] != '.')
            digits += sci[pos];
        ++pos;
    }
    int exponent = 0;
    if (pos < sci.size()) {
        ++pos; // 'e'
        if (sci[pos] == '+')
            ++pos;
        std::from_chars(sci.data() + pos, sci.data() + sci.size(), exponent);
    }

    const int n = static_cast<int>(digits.size());
    if (exponent < -4 || exponent >= 16) {
        // Python: 1e-05, 1.5e-07, 1e+16, 1.2345678901234568e+17
        out += digits[0];
        if (n > 1) {
            out += '.';
            out.append(digits, 1);
        }
        out += fmt::format("e{}{:02d}", exponent < 0 ? '-' : '+', exponent < 0 ? -exponent : exponent);
        return out;
    }
    const int point = exponent + 1; // digits before the decimal point
    if (point <= 0) {
        out += "0.";
        out.append(static_cast<std::size_t>(-point), '0');
        out += digits;
    } else if (point >= n) {
        out += digits;
        out.append(static_cast<std::size_t>(point - n), '0');
        out += ".0";
    } else {
        out.append(digits, 0, static_cast<std::size_t>(point));
        out += '.';
        out.append(digits, static_cast<std::size_t>(point));
    }
    return out;
}

namespace {

// Python repr() of a str, for ASCII control characters; other bytes (UTF-8)
// are copied as they are.
std::string python_string_repr(const std::string& s)
{
    const char quote = (s.find('\'') != std::string::npos && s.find('"') == std::string::npos) ? '"' : '\'';
    std::string out(1, quote);
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if (c == quote || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (c == '\t') {
            out += "\\t";
        } else if (u < 0x20 || u == 0x7f) {
            out += fmt::format("\\x{:02x}", u);
        } else {
            out += c;
        }
    }
    out += quote;
    return out;
}

// Python repr() of a value inside a list or dict (invalid is None there).
void append_repr(std::string& out, const Value& v)
{
    switch (v.kind()) {
    case Value::Kind::invalid: out += "None"; break;
    case Value::Kind::boolean: out += v.as_bool() ? "True" : "False"; break;
    case Value::Kind::integer: out += fmt::format("{}", v.as_int()); break;
    case Value::Kind::floating: out += python_float_repr(v.as_double()); break;
    case Value::Kind::string: out += python_string_repr(v.as_string()); break;
    case Value::Kind::list: {
        out += '[';
        bool first = true;
        for (const auto& item : v.as_list()) {
            if (!first)
                out += ", ";
            first = false;
            append_repr(out, item);
        }
        out += ']';
        break;
    }
    case Value::Kind::dict: {
        out += '{';
        bool first = true;
        for (const auto& [key, item] : v.as_dict()) {
            if (!first)
                out += ", ";
            first = false;
            out += python_string_repr(key);
            out += ": ";
            append_repr(out, item);
        }
        out += '}';
        break;
    }
    }
}

} // namespace

std::string text(const Value& value)
{
    if (value.is_invalid())
        return "---";
    if (value.is_string())
        return value.as_string();
    std::string out;
    append_repr(out, value);
    return out;
}

std::string repr(const Value& value)
{
    if (value.is_string())
        return python_string_repr(value.as_string());
    return text(value);
}

} // namespace moat
