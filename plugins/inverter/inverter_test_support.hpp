// Shared set-up of the inverter tests: the common defaults of
// inverter-control.md §20 and small helpers.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <string>
#include <vector>

#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "controller.hpp"
#include "inputs.hpp"
#include "params.hpp"

namespace moat::inverter::test {

/// §20 common defaults: 3 phases, 52.0 V, battery current 0, PV 0 A, SoC 50 %,
/// consumption 0, u_max 56.0, u_min 48.0, BMS limits 100 A / 100 A, both
/// allowed, b_cap 280 Ah.
inline Inputs defaults() {
    Inputs in;
    in.n_phase = 3;
    in.battery_voltage = 52.0;
    in.soc_percent = 50;
    in.max_charge_voltage = 56.0;
    in.low_voltage = 48.0;
    in.max_charge_current = 100;
    in.max_discharge_current = 100;
    in.capacity = 280;
    return in;
}

/// The sample configuration inv.cfg.sample (48 V, 3 phases).
inline SystemParams sample_cfg() {
    SystemParams sp;
    sp.p_step = 200;
    sp.pg_min = -200;
    sp.pg_max = 4500;
    sp.inv_eff = 0.88;
    return sp;
}

/// A controller and its inputs with the §20 defaults; last_p = dest_p = 0.
struct Rig {
    explicit Rig(SystemParams sp = {}) : ctl(sp) {}
    Inputs in = defaults();
    Controller ctl;

    /// PV current, with i_pv_max = PV unless given.
    void pv(double amps, double max = -1) {
        in.pv_current = amps;
        ctl.pv.set_max(max < 0 ? amps : max);
    }
    void consumption(double l1, double l2, double l3) { in.consumption = {l1, l2, l3}; }
};

/// The names of the rules in a report, in order.
inline std::vector<std::string> rules(const CycleReport& r) {
    std::vector<std::string> out;
    for (auto& e : r.limits) out.emplace_back(to_string(e.rule));
    return out;
}
inline std::vector<std::string> rules(const std::vector<LimitEntry>& limits) {
    std::vector<std::string> out;
    for (auto& e : limits) out.emplace_back(to_string(e.rule));
    return out;
}

inline const LimitEntry* find_rule(const CycleReport& r, Rule rule) {
    for (auto& e : r.limits)
        if (e.rule == rule) return &e;
    return nullptr;
}

/// Figures in the spec have two decimals.
inline auto approx(std::vector<double> v, double margin = 0.006) { return Catch::Matchers::Approx(v).margin(margin); }
inline Approx near(double v, double margin = 0.006) { return Approx(v).margin(margin); }
inline std::vector<double> all3(double v) { return {v, v, v}; }

/// Run `make()` for `total` of virtual time (then cancel it), advancing the clock in 100 ms steps.
template <class Make>
void run_for(Loop& loop, VirtualClock& clock, Duration total, Make make) {
    using namespace std::chrono_literals;
    bool done = false;
    auto driver = [&]() -> Task<void> {
        try {
            auto bounded = with_timeout(total, make());
            co_await bounded;
        } catch (const TimeoutError&) {
        }
        done = true;
    };
    auto advance = [&]() -> Task<void> {
        while (!done) {
            clock.advance(100ms);
            co_await checkpoint();
        }
    };
    auto both = [&](TaskGroup& g) -> Task<void> {
        g.spawn(driver(), "under test");
        g.spawn(advance(), "clock");
        co_return;
    };
    run_until_complete(loop, with_group(both));
}

} // namespace moat::inverter::test
