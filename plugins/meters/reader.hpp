// One meter on a Link: probe it, bring it up (meter_types.hpp's life cycle)
// and read its due blocks. No D-Bus here: the plugin publishes what an
// update returns.
#pragma once

#include "block_plan.hpp"
#include "latency.hpp"
#include "link.hpp"
#include "meter_types.hpp"
#include "probe.hpp"

#include <moat/log.hpp>
#include <moat/task.hpp>

#include <optional>
#include <string>
#include <vector>

namespace moat::meters {

/// What bring-up found out about a meter.
struct MeterSetup {
    Identification id;
    Values info;
    unsigned phases = 0;
    Identity identity;
    std::vector<Block> blocks;
};

/// The outcome of one update.
struct Update {
    /// New values of the blocks read (invalid for blocks that failed).
    Values values;
    /// Blocks read successfully / attempted.
    unsigned ok = 0;
    unsigned attempted = 0;
};

class MeterReader {
public:
    /// `probe_timeout`: per probe read (the original's 1 s).
    MeterReader(Link& link, std::uint8_t unit, Logger log, Limits limits = {},
                Duration probe_timeout = std::chrono::seconds(1));

    std::uint8_t unit() const { return unit_; }

    /// Run the probe (§7.2). With `expected`, only that type's register is
    /// read and anything else there is reported (a swapped meter).
    /// nullopt when nothing supported answers. Throws LinkError.
    Task<std::optional<Identification>> probe(std::optional<MeterKind> expected = std::nullopt);

    /// Required setting, info registers, phases, identity, block plan.
    /// Throws (with a message naming the meter) when the meter cannot be used.
    Task<MeterSetup> init(const Identification& id);

    /// Read every block that is due at `now` (§7.3) and feed the latency
    /// filter. A block that fails (no reply, garbled reply, exception) is
    /// logged when its error changes and its values come back invalid.
    Task<Update> update(const MeterSetup& setup, TimePoint now);

    /// Write a register (FC06 for one word, FC16 for more). Throws
    /// std::invalid_argument for a value the register does not take,
    /// modbus::ModbusException when the meter refuses it.
    Task<void> write(const Register& reg, const Value& value);

    /// The request timeout in force: max(min_timeout, 4 × latency).
    Duration timeout(const MeterType& type) const;

private:
    Task<std::optional<modbus::Response>> try_read(const modbus::Request& r, Duration timeout);
    Task<std::vector<std::uint16_t>> read(const modbus::Request& r, Duration timeout);
    void block_failed(std::size_t i, const Block& b, const std::string& why);

    Link& link_;
    std::uint8_t unit_;
    Logger log_;
    Limits limits_;
    Duration probe_timeout_;
    LatencyFilter latency_;
    std::vector<std::optional<TimePoint>> last_read_;
    std::vector<std::string> last_error_;
};

} // namespace moat::meters
