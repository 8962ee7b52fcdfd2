// Helpers for the battery tests: the sample controller configuration
// (bms.cfg, 16 cells) as the controller sends it, and time points.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <vector>

#include "battery.hpp"
#include "config_merge.hpp"

namespace moat::bms::battery::test {

using msgpack::Map;
using msgpack::Value;

/// The `batt` app's tree of bms.cfg (cell, pack, poll values as in the sample file).
inline Value bms_cfg_tree() {
    return Value(Map{
        {"serial", "ser"},
        {"t", Map{{"voltage", 1}, {"cellvoltage", 2}, {"celltemperature", 5}}},
        {"batt", Map{{"n", 16},
                     {"cap", Map{{"ah", 280}, {"cur", 50000000}, {"loss", 0.02}, {"a", 250}}},
                     {"u", Map{{"max", 58}, {"min", 41.6}, {"pin", 26}, {"scale", 0.0013}, {"offset", 0}}},
                     {"i", Map{{"max", 200}, {"min", -200}, {"ext", Map{{"max", 150}, {"min", -150}}}, {"offset", 0.1}}}}},
        {"cell", Map{{"balance", Map{{"min", 3.45}, {"d", 0.05}, {"n", 4}, {"r", 0.05}}},
                     {"u", Map{{"min", 2.7}, {"max", 3.63}, {"nom", 3.2}, {"ext", Map{{"min", 2.9}, {"max", 3.58}}},
                               {"lim", Map{{"min", 3.0}, {"max", 3.4}}}, {"samples", 5}, {"range", 0.5}, {"corr", 0.985}}},
                     {"load", Map{{"r", 3.1}, {"b", 3950}, {"max", 60}}},
                     {"batt", Map{{"b", 3950}, {"min", 15}, {"max", 45}}}}},
        {"poll", Map{{"n", 5}, {"t", 250}, {"d", 2000}, {"k", 15000}}},
        {"relay", Map{{"pin", 2}, {"t", 10000}, {"t1", 2000}}},
    });
}

inline BatteryConfig bms_cfg(Options o = {}) {
    Parsed p = parse_battery_config(bms_cfg_tree(), o);
    if (!p.config) FAIL("bms.cfg does not parse: " << p.problems.front().key << ": " << p.problems.front().reason);
    return *p.config;
}

/// Virtual time: seconds after an arbitrary origin.
inline TimePoint at(double s) {
    return TimePoint{} + std::chrono::hours(1) + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

inline std::vector<double> cells(int n, double v) { return std::vector<double>(std::size_t(n), v); }

inline std::vector<CellReading> readings(const std::vector<double>& v) {
    std::vector<CellReading> r;
    for (double x : v) r.push_back({x, false, false});
    return r;
}

inline std::vector<CellTemperature> temps(int n, double c) {
    return std::vector<CellTemperature>(std::size_t(n), CellTemperature{c + 5, c});
}

} // namespace moat::bms::battery::test
