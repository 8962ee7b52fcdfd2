#include "registers.hpp"

#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <limits>

namespace moat::meters {

std::string_view encoding_name(Encoding e) noexcept
{
    switch (e) {
    case Encoding::u16: return "u16";
    case Encoding::s16: return "s16";
    case Encoding::u32b: return "u32b";
    case Encoding::s32b: return "s32b";
    case Encoding::u64b: return "u64b";
    case Encoding::s32l: return "s32l";
    case Encoding::f32b: return "f32b";
    case Encoding::text: return "text";
    case Encoding::mapu16: return "mapu16";
    }
    return "?";
}

std::uint16_t encoding_words(Encoding e) noexcept
{
    switch (e) {
    case Encoding::u16:
    case Encoding::s16:
    case Encoding::mapu16: return 1;
    case Encoding::u32b:
    case Encoding::s32b:
    case Encoding::s32l:
    case Encoding::f32b: return 2;
    case Encoding::u64b: return 4;
    case Encoding::text: return 0;
    }
    return 0;
}

std::string_view quantity_name(Quantity q) noexcept
{
    switch (q) {
    case Quantity::none: return "none";
    case Quantity::voltage: return "voltage";
    case Quantity::current: return "current";
    case Quantity::power: return "power";
    case Quantity::frequency: return "frequency";
    case Quantity::energy: return "energy";
    }
    return "?";
}

std::optional<Range> Limits::range(Quantity q) const noexcept
{
    switch (q) {
    case Quantity::none: return std::nullopt;
    case Quantity::voltage: return voltage;
    case Quantity::current: return current;
    case Quantity::power: return power;
    case Quantity::frequency: return frequency;
    case Quantity::energy: return energy;
    }
    return std::nullopt;
}

std::chrono::milliseconds max_age_for(std::string_view path) noexcept
{
    using namespace std::chrono_literals;
    for (std::string_view fast : {"/Ac/Power", "/Ac/L1/Power", "/Ac/L2/Power", "/Ac/L3/Power"})
        if (path == fast) return 1000ms;
    return 4000ms;
}

std::string Register::describe() const
{
    std::string enc(encoding_name(encoding));
    if (encoding == Encoding::text) enc += fmt::format("({})", words);
    return fmt::format("{} ({} 0x{:04X}+{} {})", path, modbus::access_name(access), address, words, enc);
}

namespace {

// The words of a register assembled in its encoding's word order.
std::uint64_t raw_bits(Encoding e, std::span<const std::uint16_t> w) noexcept
{
    switch (e) {
    case Encoding::u16:
    case Encoding::s16:
    case Encoding::mapu16: return w[0];
    case Encoding::u32b:
    case Encoding::s32b:
    case Encoding::f32b: return std::uint64_t(w[0]) << 16 | w[1];
    case Encoding::s32l: return std::uint64_t(w[1]) << 16 | w[0];
    case Encoding::u64b: return std::uint64_t(w[0]) << 48 | std::uint64_t(w[1]) << 32 | std::uint64_t(w[2]) << 16 | w[3];
    case Encoding::text: return 0;
    }
    return 0;
}

Value decode_text(std::span<const std::uint16_t> words)
{
    std::string s;
    for (auto w : words) {
        s.push_back(static_cast<char>(w >> 8));
        s.push_back(static_cast<char>(w & 0xFF));
    }
    while (!s.empty() && s.back() == '\0') s.pop_back();
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7E) return Value::invalid(); // not printable ASCII: not an identification
    return Value(std::move(s));
}

// A number published as is, or as its decimal text; checked against its range.
Value publish(const Register& reg, std::int64_t integer, double number, bool is_integer, const Limits& limits)
{
    if (!std::isfinite(number)) return Value::invalid();
    if (auto r = limits.range(reg.quantity); r && !r->contains(number)) return Value::invalid();
    if (reg.as_string) return Value(is_integer ? std::to_string(integer) : python_float_repr(number));
    if (is_integer) return Value(integer);
    return Value(number);
}

bool integral(double d) noexcept { return std::isfinite(d) && d == std::trunc(d); }

} // namespace

Value decode(const Register& reg, std::span<const std::uint16_t> words, const Limits& limits)
{
    if (words.size() != reg.words)
        throw std::invalid_argument(fmt::format("decoding {}: {} words given", reg.describe(), words.size()));
    if (reg.encoding == Encoding::text) return decode_text(words);

    const std::uint64_t bits = raw_bits(reg.encoding, words);
    if (reg.invalid_raw && bits == *reg.invalid_raw) return Value::invalid();

    if (reg.encoding == Encoding::mapu16) {
        for (const auto& e : reg.map)
            if (e.raw == bits) return publish(reg, e.value, double(e.value), true, limits);
        return Value::invalid();
    }
    if (reg.encoding == Encoding::f32b) {
        const double f = std::bit_cast<float>(static_cast<std::uint32_t>(bits));
        return publish(reg, 0, reg.scale == 1 ? f : f / reg.scale, false, limits);
    }

    // Integer encodings: the raw number, exactly.
    std::int64_t raw = 0;
    switch (reg.encoding) {
    case Encoding::s16: raw = static_cast<std::int16_t>(bits); break;
    case Encoding::s32b:
    case Encoding::s32l: raw = static_cast<std::int32_t>(bits); break;
    case Encoding::u64b:
        if (bits > std::uint64_t(std::numeric_limits<std::int64_t>::max())) {
            // Only representable as a double; as an integer it would not fit a Value.
            if (reg.scale == 1 && !reg.as_string) return Value::invalid();
            if (reg.as_string) return Value(std::to_string(bits));
            return publish(reg, 0, double(bits) / reg.scale, false, limits);
        }
        raw = static_cast<std::int64_t>(bits);
        break;
    default: raw = static_cast<std::int64_t>(bits); break;
    }
    if (reg.scale == 1) return publish(reg, raw, double(raw), true, limits);
    return publish(reg, 0, double(raw) / reg.scale, false, limits);
}

std::vector<std::uint16_t> encode(const Register& reg, const Value& value)
{
    if (!reg.writable) throw std::invalid_argument(fmt::format("{} is not writable", reg.path));
    const auto number = value.is_bool() ? std::nullopt : value.as_number();
    if (!number) throw std::invalid_argument(fmt::format("{}: {:r} is not a number", reg.path, value));
    if (!reg.writable->contains(*number))
        throw std::invalid_argument(fmt::format("{}: {} is outside {}..{}", reg.path, value,
                                                python_float_repr(reg.writable->min), python_float_repr(reg.writable->max)));
    const double raw = *number * reg.scale;
    auto as_integer = [&](double lo, double hi) {
        if (!integral(raw) || raw < lo || raw > hi)
            throw std::invalid_argument(fmt::format("{}: {} does not fit {}", reg.path, value, encoding_name(reg.encoding)));
        return static_cast<std::int64_t>(raw);
    };
    auto split32 = [](std::uint32_t v) {
        return std::vector<std::uint16_t>{static_cast<std::uint16_t>(v >> 16), static_cast<std::uint16_t>(v & 0xFFFF)};
    };
    switch (reg.encoding) {
    case Encoding::u16: return {static_cast<std::uint16_t>(as_integer(0, 0xFFFF))};
    case Encoding::s16: return {static_cast<std::uint16_t>(as_integer(-0x8000, 0x7FFF))};
    case Encoding::u32b: return split32(static_cast<std::uint32_t>(as_integer(0, 0xFFFFFFFF)));
    case Encoding::s32b: return split32(static_cast<std::uint32_t>(as_integer(INT32_MIN, INT32_MAX)));
    case Encoding::s32l: {
        auto w = split32(static_cast<std::uint32_t>(as_integer(INT32_MIN, INT32_MAX)));
        return {w[1], w[0]};
    }
    case Encoding::f32b: return split32(std::bit_cast<std::uint32_t>(static_cast<float>(raw)));
    case Encoding::u64b:
    case Encoding::text:
    case Encoding::mapu16: break;
    }
    throw std::invalid_argument(fmt::format("{}: writing {} registers is not supported", reg.path,
                                            encoding_name(reg.encoding)));
}

std::optional<std::string_view> label(const Register& reg, const Value& value)
{
    if (reg.labels.empty()) return std::nullopt;
    std::int64_t v = 0;
    if (value.is_int())
        v = value.as_int();
    else if (value.is_double() && integral(value.as_double()) && std::fabs(value.as_double()) < 1e15)
        v = static_cast<std::int64_t>(value.as_double());
    else
        return std::nullopt;
    for (const auto& l : reg.labels)
        if (l.value == v) return l.text;
    if (!reg.unknown_label.empty()) return reg.unknown_label;
    return std::nullopt;
}

} // namespace moat::meters
