// The output stage of a cycle (§4, §10.1 switch, §18.1, §18.5, D2).
#include "inverter_test_support.hpp"

#include "controller.hpp"

using namespace moat::inverter;
using namespace moat::inverter::test;

namespace {
const double none = Redistributor::no_cap;
}

TEST_CASE("D2: the AC-input setpoint leaves out what the AC-out loads take", "[inverter][output]") {
    Rig rig;
    rig.in.consumption_on_output = {100, 50, 0};
    rig.consumption(300, 300, 300);  // includes the AC-out loads
    auto c = rig.ctl.cycle(rig.in, Target::grid_p(0));
    CHECK_THAT(c.report.inv_phases, approx(all3(300)));
    CHECK_THAT(c.report.phases, approx({200, 250, 300}));
    CHECK_THAT(c.setpoints, approx({-200, -250, -300}));
    // off: the inverter delivers nothing, the AC-out loads come from AC-in.
    c = rig.ctl.cycle(rig.in, Target::fixed(0));
    CHECK_THAT(c.setpoints, approx({100, 50, 0}));
}

TEST_CASE("§18.5 low-battery guard: each condition, in every mode", "[inverter][output][guard]") {
    auto blocked = [](auto change, Target t) {
        Rig rig;
        change(rig.in);
        auto c = rig.ctl.cycle(rig.in, t);
        // The chain may already have stopped discharging (I_MIN, U_MIN); the
        // guard acts, and is recorded, when it had not.
        bool acted = find_rule(c.report, Rule::LOW_BATT) != nullptr;
        bool discharging = false;
        for (double p : c.report.inv_phases) discharging |= p > 0;
        return !discharging && (acted || t.kind != Target::Kind::fixed);
    };
    auto allow = [](Inputs& in) { in.allow_to_discharge = false; };
    auto zero = [](Inputs& in) { in.max_discharge_current = 0; };
    auto low_u = [](Inputs& in) {
        in.battery_voltage = 48.0;
        in.low_voltage = 48.0;
    };
    auto low_soc = [](Inputs& in) { in.soc_percent = 5; };
    for (Target t : {Target::inv_p(900), Target::fixed(900), Target::grid_p(-900)}) {
        CHECK(blocked(allow, t));
        CHECK(blocked(zero, t));
        CHECK(blocked(low_u, t));
        CHECK(blocked(low_soc, t));
        CHECK_FALSE(blocked([](Inputs& in) { in.soc_percent = 6; }, t));
    }
    // Charging is never blocked.
    Rig rig;
    rig.in.soc_percent = 1;
    rig.ctl.stepper.reset(-900);
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(-900));
    CHECK_THAT(c.setpoints, approx(all3(300)));
    CHECK_FALSE(find_rule(c.report, Rule::LOW_BATT));
    CHECK(low_battery(rig.in, rig.ctl.params) == "SoC 0.010 <= soc_cutoff 0.050");
    // analyze's capacity test: the SoC cutoff does not count, the BMS's limits do
    CHECK_FALSE(low_battery(rig.in, rig.ctl.params, true));
    rig.in.allow_to_discharge = false;
    CHECK(low_battery(rig.in, rig.ctl.params, true) == "the BMS does not allow discharging");
    rig.in.allow_to_discharge = true;
    c = rig.ctl.cycle(rig.in, Target::fixed(-900));
    CHECK_THAT(c.setpoints, approx(all3(300)));
    // The guard's own record, where the chain let discharging through.
    Rig low;
    low.in.soc_percent = 5;
    low.ctl.stepper.reset(900);
    c = low.ctl.cycle(low.in, Target::inv_p(900));
    CHECK(rules(c.report) == std::vector<std::string>{"LOW_BATT"});
    CHECK(find_rule(c.report, Rule::LOW_BATT)->lim == "SoC 0.050 <= soc_cutoff 0.050");
}

TEST_CASE("§18.5 guard: the rate limiter continues from what was written", "[inverter][output][guard]") {
    Rig rig;
    rig.in.soc_percent = 4;  // below soc_cutoff and outside the SoC band
    rig.ctl.stepper.reset(1000);
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(1000));
    CHECK(c.report.setpoint == 1000);
    CHECK_THAT(c.setpoints, approx(all3(0)));
    CHECK(rig.ctl.stepper.last_p == 0);
    rig.in.soc_percent = 10;  // guard released: stepping starts from 0, not 1000
    c = rig.ctl.cycle(rig.in, Target::inv_p(1000));
    CHECK(c.report.setpoint == near(350));
}

TEST_CASE("safe setpoints (§18.1) and the write log line (§4)", "[inverter][output]") {
    SystemParams sp;
    CHECK(safe_setpoints(3, sp) == std::vector<double>{0, 0, 0});
    CHECK_FALSE(std::signbit(safe_setpoints(1, sp)[0]));
    sp.safe_power = 50;
    CHECK(safe_setpoints(2, sp) == std::vector<double>{-50, -50});

    CHECK(set_line({-333.333, -333.333, -333.333}, false) == "SET inverter -1000 ∑ -333 -333 -333");
    CHECK(set_line({-1150}, false) == "SET inverter -1150");
    CHECK(set_line({962.96, 962.96, 962.96}, true) == "NO-OP SET inverter 2889 ∑ 963 963 963");
}
TEST_CASE("the switch: phase_redistribution off (default) writes what the chain computed", "[inverter][redistribute]") {
    // The original's literal algorithm compares controller-sign values with
    // Victron-sign measurements and never redistributes; off reproduces that
    // effective behaviour (§10.1's literal vectors: output = input).
    Rig rig;
    rig.in.max_discharge_current = 300;
    CHECK_FALSE(rig.ctl.params.phase_redistribution);
    rig.ctl.running = true;
    rig.in.hub4_setpoint = {-2000, -2000, -2000};
    rig.in.ac_in_power = {-1500, -2000, -2000};
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(6000));
    CHECK_THAT(c.report.phases, approx(all3(2000), 1e-9));
    rig.in.hub4_setpoint = {1500, 500, 500};
    rig.in.ac_in_power = {1000, 500, 500};
    rig.consumption(-1000, 0, 0);  // makes the split -1500 / -500 / -500
    c = rig.ctl.cycle(rig.in, Target::inv_p(-2500));
    CHECK_THAT(c.report.phases, approx({-1500, -500, -500}, 1e-9));
}

TEST_CASE("the switch on: redistribution runs once the mode is running, with more than one phase",
          "[inverter][redistribute]") {
    SystemParams sp;
    sp.phase_redistribution = true;
    Rig rig(sp);
    rig.in.max_discharge_current = 300;  // 6 kW need 128 A
    rig.in.hub4_setpoint = {-2000, -2000, -2000};
    rig.in.ac_in_power = {-1500, -2000, -2000};
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(6000));
    CHECK_THAT(c.report.phases, approx(all3(2000), 1e-9));  // not running yet
    rig.ctl.running = true;
    c = rig.ctl.cycle(rig.in, Target::inv_p(6000));
    CHECK_THAT(c.report.inv_phases, approx(all3(2000), 1e-9));  // the inverter split is reported as computed
    CHECK_THAT(c.report.phases, approx({1550, 2250, 2300}, 1e-9));
    CHECK_THAT(c.setpoints, approx({-1550, -2250, -2300}, 1e-9));
    // off/idle are not closed-loop: never redistributed.
    c = rig.ctl.cycle(rig.in, Target::fixed(6000));
    CHECK_THAT(c.setpoints, approx(all3(-2000), 1e-9));
    // A new mode forgets the caps and waits for its first settle.
    rig.ctl.start_mode(6000);
    CHECK_FALSE(rig.ctl.running);
    CHECK(rig.ctl.redistributor.ps_min[0] == -none);
}

TEST_CASE("redistribution works on the AC-input setpoints (after D2)", "[inverter][redistribute]") {
    SystemParams sp;
    sp.phase_redistribution = true;
    Rig rig(sp);
    rig.in.max_discharge_current = 300;  // 6 kW need 128 A
    rig.ctl.running = true;
    rig.in.consumption_on_output = {100, 100, 100};
    rig.consumption(100, 100, 100);
    // inverter 2100 per phase -> AC input 2000 per phase, as in the first vector
    rig.in.hub4_setpoint = {-2000, -2000, -2000};
    rig.in.ac_in_power = {-1500, -2000, -2000};
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(6300));
    CHECK_THAT(c.report.phases, approx({1550, 2250, 2300}, 1e-9));
}
