// Reading the whole ring once: its size (hops), every module's settings,
// voltages and temperatures, converted with the module's own constants and
// the configured B values (probe, and the plugin at link-up).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <moat/log.hpp>
#include <moat/task.hpp>

#include "cell_packet.hpp"
#include "link_session.hpp"

namespace moat::bms {

struct CellSnapshot {
    int index = 0;
    cell::Settings settings;
    cell::VoltageStatus voltage;
    cell::Reading voltage_reading = cell::Reading::none;
    std::optional<double> volts;
    cell::Temperatures temps;
    std::optional<double> load_celsius, cell_celsius;  ///< on-board (load) and cell thermistors
};

struct RingSnapshot {
    int hops = 0;                 ///< modules in the ring
    std::vector<CellSnapshot> cells;
    std::vector<std::string> warnings;  ///< config vs module mismatches, invalid readings
};

/// The ring's module count: a voltage read of module 0 comes back with hops = ring size
/// (0 when no module answers at hop 0).
Task<int> ring_size(LinkSession& s);
/// Read `n` modules from hop 0 (settings, voltages, temperatures); fewer, with a
/// warning, when the ring is shorter; n <= 0: the whole ring.
Task<RingSnapshot> read_ring(LinkSession& s, int n, Logger& log);

} // namespace moat::bms
