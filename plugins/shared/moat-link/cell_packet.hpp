// The cell-ring payload: a 4-byte header and fixed-size little-endian records
// (the MoaT fork of the diyBMS v4 module firmware; not wire-compatible with
// upstream diyBMS). The command numbers, sizes and layouts are the firmware's
// own (its MESSAGES.md disagrees in places and is wrong).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

namespace moat::bms::cell {

using Bytes = std::vector<std::uint8_t>;

/// The most modules one packet can address (5 bits of "cells minus one").
inline constexpr int max_cells = 32;

enum class Command : std::uint8_t {
    reset_packet_counters = 0,
    read_voltage_and_status = 1,
    identify = 2,
    read_temperature = 3,
    read_packet_counters = 4,
    read_settings = 5,
    write_settings = 6,
    read_balance_power = 7,
    timing = 8,
    read_balance_current_counter = 9,
    reset_balance_current_counter = 10,
    write_balance_level = 11,
    write_pid_config = 12,
    read_pid_config = 13,
};

/// Bytes the host sends per addressed module (once for a broadcast).
std::size_t request_size(Command c);
/// Bytes each addressed module appends.
std::size_t reply_size(Command c);
/// Commands 0..13 are known; 14 and 15 are forwarded untouched by modules.
bool known_command(unsigned c);
const char* to_string(Command c);

/// The payload header (4 bytes).
struct Header {
    std::uint8_t start = 0;     ///< hop index of the first addressed module
    bool broadcast = false;     ///< one request record shared by all addressed modules
    bool seen = false;          ///< set by each addressed module that knew the command
    std::uint8_t command = 0;   ///< 0..15
    std::uint8_t hops = 0;      ///< 0 when sent; the ring's module count on return
    std::uint8_t cells = 0;     ///< addressed modules minus one (0..31)
    std::uint8_t sequence = 0;  ///< 0..7
    bool operator==(const Header&) const = default;
};
inline constexpr std::size_t header_size = 4;

std::array<std::uint8_t, header_size> encode(const Header& h);
/// nullopt when fewer than 4 bytes. The reserved bits are ignored.
std::optional<Header> decode_header(std::span<const std::uint8_t> payload);

// ---- records (all little-endian, packed) ----

/// ReadVoltageAndStatus reply. `word` is the raw field with its flags.
struct VoltageStatus {
    std::uint16_t word = 0;
    std::uint16_t bypass_raw = 0;  ///< uninitialised in the 2022 firmware: ignored by the host
    bool balancing() const { return word & 0x8000; }
    bool load_over_temperature() const { return word & 0x4000; }
    /// The sum of numSamples 10-bit readings (flags masked off).
    std::uint16_t raw() const { return word & 0x1FFF; }
};
VoltageStatus decode_voltage(std::span<const std::uint8_t> rec);
Bytes encode(const VoltageStatus& v);

/// What a raw reading means: a value, no reading yet (raw 0), or impossible.
enum class Reading { value, none, invalid };
/// Voltage: raw 0 = none; bit 13 set, or the masked raw above what `samples`
/// 10-bit readings can sum to (5115 for the usual 5) = invalid.
Reading classify(const VoltageStatus& v, int samples = 5);

/// ReadTemperature reply: two 12-bit fields in 3 bytes. int = the load
/// resistor's thermistor on the board, ext = the cell's thermistor.
struct Temperatures {
    std::uint16_t int_raw = 0;
    std::uint16_t ext_raw = 0;
    bool operator==(const Temperatures&) const = default;
};
Temperatures decode_temperatures(std::span<const std::uint8_t> rec);
Bytes encode(const Temperatures& t);
/// Thermistor: raw 0 = none; raw >= 1023 = invalid (the conversion has no value there).
Reading classify_thermistor(std::uint16_t raw);

/// ReadPacketCounters reply. `received` never counts in the 2022 firmware:
/// reported, never used for decisions.
struct PacketCounters {
    std::uint16_t received = 0;
    std::uint16_t bad = 0;
    bool operator==(const PacketCounters&) const = default;
};
PacketCounters decode_packet_counters(std::span<const std::uint8_t> rec);
Bytes encode(const PacketCounters& c);

/// ReadSettings reply (22 bytes).
struct Settings {
    std::uint32_t git_version = 0;
    std::uint16_t board_version = 440;
    std::uint8_t data_version = 1;
    std::uint8_t mv_per_adc = 128;            ///< mV per ADC step x 64
    std::uint32_t voltage_calibration = 0x400D70A4;  ///< IEEE float bits (2.21)
    std::uint16_t bypass_temp_raw = 850;
    std::uint16_t bypass_volt_raw = 4775;
    std::uint16_t b_internal = 3950;
    std::uint16_t b_external = 3950;
    std::uint8_t num_samples = 5;
    std::uint8_t load_res_raw = 52;           ///< ohm x 16, truncated by the firmware (3.25 ohm)
    bool operator==(const Settings&) const = default;
    float calibration() const;
    double volts_per_step() const { return mv_per_adc / 1000.0 / 64.0; }
    double load_resistance() const { return load_res_raw / 16.0; }
};
inline constexpr std::size_t settings_size = 22;
Settings decode_settings(std::span<const std::uint8_t> rec);
Bytes encode(const Settings& s);

/// WriteSettings request: each field is ignored by the module when zero.
struct WriteSettings {
    std::uint32_t calibration_bits = 0;
    std::uint16_t bypass_temp_raw = 0;
    std::uint16_t bypass_volt_raw = 0;
    bool operator==(const WriteSettings&) const = default;
};
WriteSettings decode_write_settings(std::span<const std::uint8_t> rec);
Bytes encode(const WriteSettings& w);

/// WritePIDconfig request / ReadPIDconfig reply: opaque FastPID integers.
struct PidConfig {
    std::uint32_t kp = 0, ki = 0, kd = 0;
    bool operator==(const PidConfig&) const = default;
};
PidConfig decode_pid(std::span<const std::uint8_t> rec);
Bytes encode(const PidConfig& p);

/// Little-endian helpers for the one-field records (balance level, PWM, counter).
std::uint32_t get_le(std::span<const std::uint8_t> rec, std::size_t off, std::size_t n);
void put_le(Bytes& out, std::uint32_t v, std::size_t n);

/// float <-> its bit pattern (the calibration field).
std::uint32_t float_bits(float f);
float bits_float(std::uint32_t bits);

// ---- whole payloads ----

/// A request payload: header (hops 0, seen 0) + records.
Bytes build_request(const Header& h, std::span<const Bytes> records);

/// Why a ring exchange failed. The engine retries timeout and message_lost.
enum class CellErrorKind { timeout, message_lost, no_such_cell, spurious_data, short_reply, bad_request };
const char* to_string(CellErrorKind k);

class CellError : public std::runtime_error {
public:
    CellError(CellErrorKind kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
    CellErrorKind kind() const { return kind_; }

private:
    CellErrorKind kind_;
};

/// A reply cut into records: the broadcast request record skipped (by the
/// *request* size), the rest in reply-size pieces.
struct Reply {
    Header header;
    std::vector<Bytes> records;
};
/// Decode a reply payload. Fails with no_such_cell when `seen` is clear and
/// spurious_data for a trailing partial record, a missing broadcast record,
/// or a short header. The record count is the caller's to check (check_count).
std::variant<Reply, CellError> parse_reply(std::span<const std::uint8_t> payload);
/// short_reply unless `reply` has exactly `expected` records.
std::optional<CellError> check_count(const Reply& reply, std::size_t expected);

} // namespace moat::bms::cell
