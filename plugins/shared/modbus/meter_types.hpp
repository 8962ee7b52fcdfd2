// The supported meter types (spec §2, §4, §6, §10): how each is recognised,
// its identification and measurement registers, its phase count and its
// identity on the bus. Data only, plus the few rules that are not a table.
//
// A device's life in these terms (the I/O layer does the reading):
//  1. probe (probe.hpp): a Prober names the type and model.
//  2. the type's required_setting, if any, is checked (and written).
//  3. read info_registers(), one request each (single_blocks()); an
//     exception reply to an optional one leaves it invalid, any other
//     failure fails the device.
//  4. phase_count() and identity() from those values.
//  5. plan_blocks(data_registers(type, phases)) and read the blocks.
#pragma once

#include "registers.hpp"

#include <chrono>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moat::meters {

enum class MeterKind : std::uint8_t { abb_b2x, em24rtu, sdm120, sdm630v1, sdm630v2, sdm72dv2 };

/// An identification code and the model string it stands for.
struct ModelCode {
    std::uint16_t code;
    std::string_view model;
};

/// How a type is recognised: one u16 register, read with the access types in
/// order (the rules are in probe.hpp), looked up in `models`.
struct ProbeRule {
    std::uint16_t address;
    std::span<const Access> access;
    std::span<const ModelCode> models;
};

/// A configuration register that must hold a value before the meter reports
/// what this driver reads: if it differs, write it, read it back, and give
/// up on the device if it still differs.
struct RequiredSetting {
    std::uint16_t address;
    std::uint16_t value;
    /// For the log: "application H".
    std::string_view name;
};

struct MeterType {
    MeterKind kind;
    /// The original driver's class name, for logs ("Eastron_SDM630v2").
    std::string_view driver;
    /// /ProductName.
    std::string_view product_name;
    /// /ProductId.
    std::uint16_t product_id;
    ProbeRule probe;
    /// The lower bound of the adaptive request timeout.
    std::chrono::milliseconds min_timeout;
    /// Modbus units probed when a device spec says unit 0.
    std::span<const std::uint8_t> units;
    std::optional<RequiredSetting> required_setting;
};

/// All types, in probe order: ABB B2x, EM24, then the Eastron types that
/// share the meter-code register 0xFC02 (SDM120, SDM630 v2, SDM72D v2), and
/// the SDM630 v1 last, because its test (the high word of the baud-rate
/// setting) also matches a v2 or SDM72D set to 9600 or 38400 Bd (§10).
std::span<const MeterType> meter_types() noexcept;
const MeterType& meter_type(MeterKind kind) noexcept;

/// The model string for an identification code, if the type accepts it.
std::optional<std::string_view> match_model(const MeterType& type, std::uint16_t code) noexcept;

/// The identification and configuration registers, read once after the probe.
std::vector<Register> info_registers(const MeterType& type);

/// The number of phases to read, from the info values. Throws
/// std::runtime_error naming the meter when a phase configuration is
/// missing or not one the meter defines.
unsigned phase_count(const MeterType& type, const Values& info);

/// The measurement registers for `phases` phases (0..3; more throws
/// std::invalid_argument).
std::vector<Register> data_registers(const MeterType& type, unsigned phases);

/// Who a meter is on the bus.
struct Identity {
    /// /Serial.
    std::string serial;
    /// The service name's last element and settings key: "cg_" + serial
    /// (the original's prefix, kept so settings carry over), with every
    /// character a bus name or object path cannot hold replaced by '_'.
    std::string ident;
    /// The ident the original drivers used when it differs: existing
    /// settings under /Settings/Devices/<legacy_ident> are to be migrated.
    std::optional<std::string> legacy_ident;
};
/// Throws std::runtime_error when the info values hold no usable serial.
Identity identity(const MeterType& type, const Values& info);

/// Key of the internal value that holds the SDM630/SDM72D's node-address
/// register 0x0014 read as a u32: the original's "serial" (§6).
inline constexpr std::string_view legacy_serial_key = "legacy-serial";

} // namespace moat::meters
