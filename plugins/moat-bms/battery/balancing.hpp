// One balancing pass as a pure function: which cells get a balance level,
// which are cleared, whether the PWM should be read. The caller sends the
// levels (WriteBalanceLevel) and stores the new thresholds.
#pragma once

#include <optional>
#include <span>
#include <vector>

#include "battery_config.hpp"

namespace moat::bms::battery {

struct BalanceCell {
    double volts = 0;
    std::optional<double> threshold;  ///< the level we sent; nullopt: not balancing
    bool in_balance = false;          ///< the module reports bypassing (bit 15)
    bool forced = false;              ///< set by SetBalanceVoltage: never touched here
};

struct BalanceAction {
    int cell = 0;
    std::optional<double> threshold;  ///< nullopt: clear (send level 0)
    bool operator==(const BalanceAction&) const = default;
};

struct BalancePlan {
    std::vector<BalanceAction> actions;  ///< in the order to send
    bool read_pwm = false;               ///< some cell is balancing: read ReadBalancePowerPWM
    bool busy = false;                   ///< balancing goes on: next pass in 5 s, not 20 s
    // The pass's levels (for logs and tests); zero when the spread is too small.
    double start = 0, target = 0, drop = 0;
};

BalancePlan plan_balancing(const BatteryConfig& c, std::span<const BalanceCell> cells);

/// SetBalanceVoltage: below 0.1 V unforces (nullopt threshold, level 0);
/// above the cell's voltage is refused (nullopt result).
struct ManualBalance {
    bool forced = false;
    std::optional<double> threshold;
};
std::optional<ManualBalance> manual_balance(double requested, double cell_volts);

} // namespace moat::bms::battery
