// The value side of an exported item: coercion of written values (§3.2),
#include "value_dbus.hpp"
// text formatters (§2.4) and validators.
#include "moat/service.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <mutex>

namespace moat {

namespace {

std::string_view strip(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

/// Digits with single underscores between them (Python literal rules); the
/// digits without underscores, or nullopt.
std::optional<std::string> digit_run(std::string_view s) {
    if (s.empty() || !is_digit(s.front()) || !is_digit(s.back())) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '_') {
            if (!is_digit(s[i - 1]) || !is_digit(s[i + 1])) return std::nullopt;
            continue;
        }
        if (!is_digit(s[i])) return std::nullopt;
        out += s[i];
    }
    return out;
}

/// Python int(str): blanks, a sign, decimal digits with `_` separators.
std::optional<std::int64_t> python_int(std::string_view text) {
    auto s = strip(text);
    bool negative = false;
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
        negative = s.front() == '-';
        s.remove_prefix(1);
    }
    auto digits = digit_run(s);
    if (!digits) return std::nullopt;
    std::string with_sign = (negative ? "-" : "") + *digits;
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(with_sign.data(), with_sign.data() + with_sign.size(), v);
    if (ec != std::errc() || p != with_sign.data() + with_sign.size()) return std::nullopt;  // beyond int64
    return v;
}

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

/// Python float(str): blanks, a sign, a decimal literal with `_` separators,
/// or inf/infinity/nan in any case.
std::optional<double> python_float(std::string_view text) {
    auto s = strip(text);
    bool negative = false;
    if (!s.empty() && (s.front() == '+' || s.front() == '-')) {
        negative = s.front() == '-';
        s.remove_prefix(1);
    }
    double v;
    if (iequals(s, "inf") || iequals(s, "infinity")) v = std::numeric_limits<double>::infinity();
    else if (iequals(s, "nan")) v = std::numeric_limits<double>::quiet_NaN();
    else {
        // mantissa [e exponent]; the mantissa is digits[.digits] or .digits or digits.
        auto epos = s.find_first_of("eE");
        std::string_view mant = s.substr(0, epos);
        std::string literal;
        auto dot = mant.find('.');
        std::string_view ip = mant.substr(0, dot);
        std::string_view fp = dot == std::string_view::npos ? std::string_view() : mant.substr(dot + 1);
        if (ip.empty() && fp.empty()) return std::nullopt;
        if (!ip.empty()) {
            auto d = digit_run(ip);
            if (!d) return std::nullopt;
            literal += *d;
        } else literal += '0';
        if (dot != std::string_view::npos) {
            literal += '.';
            if (!fp.empty()) {
                auto d = digit_run(fp);
                if (!d) return std::nullopt;
                literal += *d;
            }
        }
        if (epos != std::string_view::npos) {
            std::string_view ex = s.substr(epos + 1);
            literal += 'e';
            if (!ex.empty() && (ex.front() == '+' || ex.front() == '-')) {
                literal += ex.front();
                ex.remove_prefix(1);
            }
            auto d = digit_run(ex);
            if (!d) return std::nullopt;
            literal += *d;
        }
        auto [p, ec] = std::from_chars(literal.data(), literal.data() + literal.size(), v);
        if (p != literal.data() + literal.size()) return std::nullopt;
        if (ec == std::errc::result_out_of_range) {
            // Python: overflow gives inf, underflow gives 0.0.
            bool big = literal.find("e-") == std::string::npos;
            v = big ? std::numeric_limits<double>::infinity() : 0.0;
        } else if (ec != std::errc()) return std::nullopt;
    }
    return negative ? -v : v;
}

/// A double truncated toward zero into int64; nullopt for nan, inf and overflow.
std::optional<std::int64_t> truncate(double d) {
    if (!std::isfinite(d)) return std::nullopt;
    double t = std::trunc(d);
    if (t < -9223372036854775808.0 || t >= 9223372036854775808.0) return std::nullopt;
    return static_cast<std::int64_t>(t);
}

/// A number as an int64 the way Python's `%d` and int() take it.
std::optional<std::int64_t> integral_of(const Value& v) {
    if (v.is_int()) return v.as_int();
    if (v.is_bool()) return v.as_bool() ? 1 : 0;
    if (v.is_double()) return truncate(v.as_double());
    return std::nullopt;
}

} // namespace

std::optional<Value> coerce(const Value& v, ValueType type) {
    if (v.is_invalid() || type == ValueType::any) return v;
    switch (type) {
    case ValueType::integer:
        if (v.is_number()) {
            auto i = integral_of(v);
            if (!i) return std::nullopt;
            return Value(*i);
        }
        if (v.is_string()) {
            auto i = python_int(v.as_string());
            if (!i) return std::nullopt;
            return Value(*i);
        }
        return std::nullopt;
    case ValueType::floating:
        if (v.is_number()) return Value(*v.as_number());
        if (v.is_string()) {
            auto d = python_float(v.as_string());
            if (!d) return std::nullopt;
            return Value(*d);
        }
        return std::nullopt;
    case ValueType::string:
        return Value(text(v));
    case ValueType::any:
        break;
    }
    return v;
}

// ---------------------------------------------------------------------------
// formatters

namespace format {

namespace {

/// One printf conversion, checked once when the formatter is made.
struct Conversion {
    std::string spec;  ///< "%" flags width precision, without length and conversion
    char conv = 0;     ///< d i u x X o c e E f F g G s r a A
};

struct PrintfFormat {
    std::string prefix, suffix;  ///< literal text, `%%` already resolved
    std::optional<Conversion> conversion;
};

PrintfFormat parse_printf(std::string_view fmt) {
    PrintfFormat out;
    std::string* lit = &out.prefix;
    for (std::size_t i = 0; i < fmt.size(); ++i) {
        char c = fmt[i];
        if (c != '%') {
            *lit += c;
            continue;
        }
        if (i + 1 < fmt.size() && fmt[i + 1] == '%') {
            *lit += '%';
            ++i;
            continue;
        }
        if (out.conversion)
            throw std::invalid_argument("printf format \"" + std::string(fmt) + "\" has more than one conversion");
        Conversion conv;
        conv.spec = "%";
        ++i;
        while (i < fmt.size() && std::string_view("-+ #0").find(fmt[i]) != std::string_view::npos) conv.spec += fmt[i++];
        while (i < fmt.size() && is_digit(fmt[i])) conv.spec += fmt[i++];
        if (i < fmt.size() && fmt[i] == '.') {
            conv.spec += fmt[i++];
            while (i < fmt.size() && is_digit(fmt[i])) conv.spec += fmt[i++];
        }
        while (i < fmt.size() && std::string_view("hlLqjzt").find(fmt[i]) != std::string_view::npos) ++i;  // Python ignores length modifiers
        if (i >= fmt.size()) throw std::invalid_argument("printf format \"" + std::string(fmt) + "\" ends inside a conversion");
        conv.conv = fmt[i];
        if (std::string_view("diuxXoceEfFgGsraA").find(conv.conv) == std::string_view::npos)
            throw std::invalid_argument("printf format \"" + std::string(fmt) + "\": unsupported conversion '%" +
                                        std::string(1, conv.conv) + "'");
        out.conversion = conv;
        lit = &out.suffix;
    }
    return out;
}

template <class T>
std::string c_format(const std::string& spec, T arg) {
    char buf[512];
    int n = std::snprintf(buf, sizeof buf, spec.c_str(), arg);
    if (n < 0) throw std::runtime_error("printf failed");
    if (static_cast<std::size_t>(n) < sizeof buf) return std::string(buf, static_cast<std::size_t>(n));
    std::string big(static_cast<std::size_t>(n) + 1, '\0');
    std::snprintf(big.data(), big.size(), spec.c_str(), arg);
    big.resize(static_cast<std::size_t>(n));
    return big;
}

/// The conversion applied to `v`; nullopt when the value does not fit it.
std::optional<std::string> convert(const Conversion& c, const Value& v) {
    switch (c.conv) {
    case 'd': case 'i': case 'u': {
        auto i = integral_of(v);
        if (!i) return std::nullopt;
        return c_format(c.spec + "lld", static_cast<long long>(*i));
    }
    case 'x': case 'X': case 'o': {
        auto i = integral_of(v);
        if (!i) return std::nullopt;
        // Python writes a sign, C the two's complement.
        if (*i < 0) {
            unsigned long long mag = 0ull - static_cast<unsigned long long>(*i);
            return "-" + c_format(c.spec + "ll" + c.conv, mag);
        }
        return c_format(c.spec + "ll" + c.conv, static_cast<unsigned long long>(*i));
    }
    case 'c': {
        auto i = integral_of(v);
        if (!i || *i < 0 || *i > 127) return std::nullopt;
        return c_format(c.spec + "c", static_cast<int>(*i));
    }
    case 'e': case 'E': case 'f': case 'F': case 'g': case 'G': case 'a': case 'A': {
        auto d = v.as_number();
        if (!d) return std::nullopt;
        return c_format(c.spec + c.conv, *d);
    }
    case 's':
        return c_format(c.spec + "s", text(v).c_str());
    case 'r':
        return c_format(c.spec + "s", repr(v).c_str());
    }
    return std::nullopt;
}


/// One parsed format per format string: a service of 1,000 cell voltages
/// holds one "%.3fV", not 1,000 (memory per path). Bounded; guarded, since
/// plugins may make formatters on threads of their own.
std::shared_ptr<const PrintfFormat> parsed_format(std::string_view fmt) {
    static std::mutex mutex;
    static std::map<std::string, std::shared_ptr<const PrintfFormat>, std::less<>> cache;
    std::lock_guard lock(mutex);
    if (auto it = cache.find(fmt); it != cache.end()) return it->second;
    auto parsed = std::make_shared<const PrintfFormat>(parse_printf(fmt));  // throws for a bad format: not cached
    if (cache.size() < 256) cache.emplace(std::string(fmt), parsed);
    return parsed;
}

} // namespace

TextFormatter printf(std::string_view fmt) {
    auto parsed = parsed_format(fmt);
    return [parsed](const Value& v) -> std::string {
        if (!parsed->conversion) return parsed->prefix + parsed->suffix;
        auto body = convert(*parsed->conversion, v);
        if (!body) return text(v);
        return parsed->prefix + *body + parsed->suffix;
    };
}

TextFormatter table(std::map<std::int64_t, std::string> entries, std::string fallback) {
    return [entries = std::move(entries), fallback = std::move(fallback)](const Value& v) -> std::string {
        // Python dict lookup: 1, 1.0 and True find the same key.
        auto d = v.as_number();
        if (!d || std::trunc(*d) != *d) return fallback;
        auto i = truncate(*d);
        if (!i) return fallback;
        auto it = entries.find(*i);
        return it == entries.end() ? fallback : it->second;
    };
}

TextFormatter hex() {
    return [](const Value& v) -> std::string {
        if (!v.is_int()) return text(v);
        auto i = v.as_int();
        if (i < 0) return fmt::format("-0x{:X}", 0ull - static_cast<unsigned long long>(i));
        return fmt::format("0x{:X}", i);
    };
}

} // namespace format

namespace validate {

Validator range(double lo, double hi) {
    return [lo, hi](const Value& v) {
        if (!v.is_number() || v.is_bool()) return false;
        double d = *v.as_number();
        return lo <= d && d <= hi;
    };
}

Validator one_of(std::vector<Value> values) {
    return [values = std::move(values)](const Value& v) {
        if (!v.is_number()) return false;
        for (const auto& e : values)
            if (v == e) return true;
        return false;
    };
}

} // namespace validate

} // namespace moat
