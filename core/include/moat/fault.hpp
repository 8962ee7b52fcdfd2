// Fault injection for tests: named points in a plugin's code that throw when
// the process was asked to fail there, so that a test can prove what a plugin
// leaves behind when it fails at that point (e.g. the inverter's safe
// setpoints before the host restarts it). Off unless MOAT_FAULT is set.
#pragma once

#include "moat/export.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace moat {

/// Thrown at a fault point the process was asked to fail.
struct MOAT_API InjectedFault : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// The fault points this process was asked to fail, from a spec such as
/// `MOAT_FAULT="ctl:refresh@3,meter:poll"`: INSTANCE:POINT fails the N-th
/// pass through that point of that plugin instance (after `@`, default the
/// first), once per process, so a restarted plugin runs on normally.
class MOAT_API FaultPoints {
public:
    FaultPoints() = default;
    /// Parses a spec; throws std::invalid_argument naming the bad part.
    explicit FaultPoints(std::string_view spec);
    /// Counts a pass of `instance` through `point`; throws InjectedFault on the
    /// pass that was asked for.
    void pass(std::string_view instance, std::string_view point);
    bool empty() const { return entries_.empty(); }
    /// The spec back, for the log ("ctl:refresh@3, meter:poll@1").
    std::string describe() const;

private:
    struct Entry {
        std::string instance, point;
        std::uint64_t at = 1, seen = 0;
    };
    std::vector<Entry> entries_;
};

} // namespace moat
