// Meter registers: where a value lives, how its words are encoded (spec
// §3), where it is published, and the decoder that turns raw words into the
// published moat::Value.
//
// Decoding never yields garbage: a NaN or infinite float, a raw "not
// available" marker, an unknown enumeration code, non-ASCII text or a
// number outside the physical range of its quantity all decode to the
// invalid value (published as an empty array, shown as `---`).
#pragma once

#include "modbus.hpp"

#include <moat/value.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moat::meters {

using modbus::Access;

/// Register encodings (§3). Words arrive big-endian; "b" is high word first,
/// "l" low word first.
enum class Encoding : std::uint8_t {
    u16,
    s16,
    u32b,
    s32b,
    u64b,
    s32l,
    f32b,
    /// ASCII, two characters per word (high byte first), trailing NULs stripped.
    text,
    /// u16 looked up in Register::map; a code not in it is invalid.
    mapu16,
};
std::string_view encoding_name(Encoding e) noexcept;
/// Words an encoding occupies (text: 0, its length is per register).
std::uint16_t encoding_words(Encoding e) noexcept;

/// What a register measures, for the plausibility check.
enum class Quantity : std::uint8_t { none, voltage, current, power, frequency, energy };
std::string_view quantity_name(Quantity q) noexcept;

/// A closed interval.
struct Range {
    double min;
    double max;
    bool contains(double v) const noexcept { return v >= min && v <= max; }
    bool operator==(const Range&) const = default;
};

/// Physical plausibility limits in published units (V, A, W, Hz, kWh). They
/// reject what no meter on a Venus site measures, so that a misdecoded or
/// corrupt value becomes invalid instead of a number; they are deliberately
/// wide (CT and VT ratios scale what a meter reports) and meant to be
/// configurable later.
struct Limits {
    /// Line to neutral; 1000 V is the highest measurement category these meters have.
    Range voltage{0, 1000};
    /// Per phase and summed; negative for meters that sign the current by direction.
    Range current{-20'000, 20'000};
    /// Negative while exporting.
    Range power{-20e6, 20e6};
    /// 0 when there is no voltage; the EM24 measures up to 440 Hz.
    Range frequency{0, 500};
    /// Counters only count up from 0; 1 TWh is a megawatt for a century.
    Range energy{0, 1e9};

    /// The range of a quantity; nullopt for Quantity::none.
    std::optional<Range> range(Quantity q) const noexcept;
};

/// One entry of an mapu16 table.
struct MapEntry {
    std::uint16_t raw;
    std::int64_t value;
};

/// A display text for an integer value (the item's text formatter).
struct Label {
    std::int64_t value;
    std::string_view text;
};

/// How long a decoded value stays fresh before its block is read again
/// (§7.3): 1 s for the total and per-phase powers, 4 s for everything else.
std::chrono::milliseconds max_age_for(std::string_view path) noexcept;

/// One register (or group of consecutive registers holding one value).
struct Register {
    /// The D-Bus path it is published on ("/Ac/L1/Voltage"). A key that does
    /// not start with '/' marks a value read for internal use only.
    std::string path;
    Access access = Access::holding;
    std::uint16_t address = 0;
    Encoding encoding = Encoding::u16;
    /// Registers occupied; must match the encoding (text: 1..).
    std::uint16_t words = 1;
    /// Published value = raw / scale. With scale 1 an integer encoding
    /// publishes an integer, otherwise a double (f32b: always a double).
    double scale = 1;
    Quantity quantity = Quantity::none;
    /// A raw bit pattern (the words assembled in the encoding's order) that
    /// the meter uses for "not available".
    std::optional<std::uint64_t> invalid_raw;
    /// Publish an integer as its decimal text (/Serial is a string, §10).
    bool as_string = false;
    /// mapu16 only: raw code → published value.
    std::span<const MapEntry> map;
    /// Display texts by value; `unknown_label` for values not listed (empty: none).
    std::span<const Label> labels;
    std::string_view unknown_label;
    /// Writable over D-Bus within this range (in published units).
    std::optional<Range> writable;
    /// A successful write changes the register layout: re-initialise the device.
    bool reinit_on_write = false;
    /// The meter may lack this register: an exception reply to reading it
    /// leaves it invalid instead of failing the device's initialisation.
    bool optional = false;
    std::chrono::milliseconds max_age{4000};

    bool published() const noexcept { return !path.empty() && path.front() == '/'; }
    /// One past the last register.
    std::uint32_t end() const noexcept { return std::uint32_t(address) + words; }
    /// "/Ac/L1/Voltage (input 0x0000+2 f32b)" — for messages.
    std::string describe() const;
};

/// Decoded values by path (or internal key).
using Values = std::map<std::string, Value>;

/// Decode the words of `reg` into its published value (invalid where the
/// header says). Throws std::invalid_argument when `words` does not hold
/// exactly reg.words registers.
Value decode(const Register& reg, std::span<const std::uint16_t> words, const Limits& limits = {});

/// The words to write for a D-Bus write of `value` to `reg`. Throws
/// std::invalid_argument (message names the path) when the register is not
/// writable, the value is not a number, out of the writable range, or not
/// an integer for an integer encoding.
std::vector<std::uint16_t> encode(const Register& reg, const Value& value);

/// The display text of `value` from reg.labels (integral doubles count as
/// integers: a PhaseConfig float 3.0 is "3P.n"); nullopt when the register
/// has no labels or the value is not an integer.
std::optional<std::string_view> label(const Register& reg, const Value& value);

} // namespace moat::meters
