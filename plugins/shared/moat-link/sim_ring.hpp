// The simulated cell ring: diyBMS-MoaT modules that process a payload exactly
// as the module firmware does (hop counting, the addressing window, the seen
// bit, reads appended, writes consumed unless broadcast, unknown commands
// forwarded), plus the ring faults a test can switch at run time.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

#include "cell_packet.hpp"
#include "serial_packer.hpp"

namespace moat::bms::sim {

using cell::Bytes;

/// One module: the true cell and the firmware's state.
struct SimModule {
    double voltage = 3.30;          ///< true cell terminal voltage (V)
    double true_divider = 2.21;     ///< hidden: what the ADC really sees (V / (divider * 2 mV) per reading)
    cell::Settings settings;        ///< EEPROM and constants, reported by ReadSettings
    std::uint16_t level_raw = 0;    ///< dynamic bypass threshold (RAM)
    cell::PidConfig pid{125, 25, 2};
    std::uint16_t bad = 0;          ///< lost packets by sequence gaps
    int last_seq = -1;
    std::uint32_t balance_counter = 0;
    double cell_celsius = 25.0;     ///< external thermistor
    double load_celsius = 25.0;     ///< on-board (load resistor) thermistor
    bool bypass = false;            ///< the load is on
    double bypass_left = 0;         ///< s of the current bypass cycle
    double cooldown_left = 0;       ///< s of cool-down after it (bit 15 stays set)
    std::uint8_t pwm = 0;
    int identify = 0;
    std::optional<std::uint16_t> voltage_raw_override;  ///< fault: the raw this module reports
    std::optional<std::uint16_t> temp_raw_override;     ///< fault: both thermistor raws

    std::uint16_t voltage_word() const;
    cell::Temperatures temperatures() const;
};

/// Ring faults, each switchable at any time.
struct RingFaults {
    bool dead = false;              ///< nothing comes back
    double drop_probability = 0;    ///< a CRC error somewhere: the packet vanishes
    int drop_nth = 0;               ///< drop the k-th packet (1-based, counted from now; 0 = off)
    bool clear_seen = false;        ///< modules do not set `seen`
    bool append_garbage = false;    ///< one extra byte after the records
    bool truncate = false;          ///< the last byte is missing
    bool duplicate = false;         ///< every reply arrives twice
    bool reorder = false;           ///< each reply is held back until the next one passed
};

struct RingCounters {
    std::uint64_t packets = 0, dropped = 0;
    std::uint64_t per_command[16] = {};
};

class SimRing {
public:
    explicit SimRing(int modules = 16, std::uint32_t seed = 1);

    /// Run one request payload through the ring; the payloads that come back
    /// (none when dropped, two when duplicated, ...), in arrival order.
    std::vector<Bytes> process(std::span<const std::uint8_t> request);

    std::vector<SimModule>& modules() { return modules_; }
    /// Let `seconds` pass for the modules: bypass cycles, load heating, the balance counter.
    void tick(double seconds);
    double bypass_on_s = 20, bypass_cooldown_s = 80;

    /// Add or remove modules at the end (a module missing or extra).
    void resize(int modules);
    RingFaults faults;
    const RingCounters& counters() const { return counters_; }
    /// Byte level: every reply is SerialPacker-framed and unframed by the
    /// controller's receiver, so a lost packet is a real CRC error there.
    bool byte_ring = false;
    /// The controller receiver's CRC and frame errors (then zeroed): ser.errcount.
    std::pair<std::uint32_t, std::uint32_t> take_errcount();

private:
    std::optional<Bytes> pass(std::span<const std::uint8_t> request);
    void apply_write(SimModule& m, cell::Command c, std::span<const std::uint8_t> rec);
    Bytes read(SimModule& m, cell::Command c);

    std::vector<SimModule> modules_;
    std::mt19937 rng_;
    int until_drop_ = 0;
    int last_drop_nth_ = 0;
    std::optional<Bytes> held_;
    RingCounters counters_;
    serial_packer::Receiver rx_;
};

} // namespace moat::bms::sim
