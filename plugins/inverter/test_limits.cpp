// Conversions (§6), sign conventions (§2), the limit chain (§7, D3) and the
// §20 scenarios that go through calc_inv_p / calc_grid_p / calc_batt_i.
#include "inverter_test_support.hpp"

#include "limits.hpp"

using namespace moat::inverter;
using namespace moat::inverter::test;
using Catch::Matchers::Contains;

TEST_CASE("i_from_p and p_from_i: one-way efficiency, the spec's examples", "[inverter][convert]") {
    // Inverting 1000 W at 52 V needs more DC than AC; charging -1000 W yields less.
    CHECK(i_from_p(1000, 52, 0.9, true) == Approx(-21.3675).epsilon(1e-5));
    CHECK(i_from_p(-1000, 52, 0.9, true) == Approx(17.3077).epsilon(1e-5));
    CHECK(p_from_i(-21.3675214, 52, 0.9) == Approx(1000).epsilon(1e-7));
    CHECK(p_from_i(17.3076923, 52, 0.9) == Approx(-1000).epsilon(1e-7));
    for (double p : {-5000.0, -1000.0, -1.0, 1.0, 250.0, 4500.0})
        CHECK(p_from_i(i_from_p(p, 51.3, 0.88, true), 51.3, 0.88) == Approx(p).epsilon(1e-12));
    // The other two combinations, for completeness.
    CHECK(i_from_p(1000, 52, 0.9, false) == Approx(-1000.0 / 52 * 0.9));
    CHECK(i_from_p(-1000, 52, 0.9, false) == Approx(1000.0 / 52 / 0.9));
    CHECK(p_from_i(-10, 52, 0.9, true) == Approx(520 / 0.9));
    CHECK(p_from_i(10, 52, 0.9, true) == Approx(-520 * 0.9));
    // Boundary: zero stays zero either way.
    CHECK(i_from_p(0, 52, 0.9, true) == 0);
    CHECK(i_from_p(0, 52, 0.9, false) == 0);
    CHECK(p_from_i(0, 52, 0.9, false) == 0);
    CHECK(p_from_i(0, 52, 0.9, true) == 0);
}

TEST_CASE("sign conventions: inputs in Victron sign, controller quantities derived", "[inverter][sign]") {
    Inputs in = defaults();
    in.battery_current = 20;  // Victron: + = charging
    CHECK(in.i_batt() == -20);  // controller: + = discharging
    in.battery_voltage = 55.8;
    CHECK(in.u_dc(0.01) == Approx(55.6));  // open-circuit estimate: charging current raises the terminal voltage
    in.soc_percent = 90;
    CHECK(in.soc() == Approx(0.9));
    in.consumption = {800, 300, 100};  // + = consumed
    in.grid = {500, 100, -200};        // + = import
    CHECK(in.p_cons() == -1200);       // negative while consuming
    CHECK(in.p_grid() == 400);
    CHECK(in.p_inv() == 800);          // consumption - import: what the inverter supplies
    CHECK(in.p_cons() + in.p_grid() + in.p_inv() == 0);
    CHECK(in.ib_max() == 100);
    CHECK(in.ib_min() == -100);
    in.allow_to_discharge = false;
    CHECK(in.ib_max() == 0);
    in.allow_to_charge = false;
    CHECK(in.ib_min() == 0);
    in.n_phase = 2;  // only the phases that exist count
    CHECK(in.p_cons() == -1100);
}

TEST_CASE("sign conventions: positive controller power is written negated", "[inverter][sign]") {
    Rig rig;
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(600));
    CHECK_THAT(c.report.inv_phases, approx(all3(200)));   // the Multi delivers 200 W per phase
    CHECK_THAT(c.setpoints, approx(all3(-200)));          // Victron: - = feed out of AC-in
    c = rig.ctl.cycle(rig.in, Target::inv_p(-600));
    CHECK_THAT(c.setpoints, approx(all3(200)));           // Victron: + = take power (charge)
}

// ---------------------------------------------------------------- §20 scenarios

TEST_CASE("S1: calc_inv_p(1000) passes unchanged", "[inverter][scenario]") {
    Rig rig;
    auto r = rig.ctl.calc_inv_p(rig.in, 1000);
    CHECK(rules(r).empty());
    CHECK_THAT(r.inv_phases, approx(all3(333.33)));
    CHECK_THAT(rig.ctl.cycle(Rig().in, Target::inv_p(1000)).setpoints, approx(all3(-333.33)));
}

TEST_CASE("S2: calc_grid_p(0) covers each phase's consumption", "[inverter][scenario]") {
    Rig rig;
    rig.consumption(800, 300, 100);
    auto c = rig.ctl.cycle(rig.in, Target::grid_p(0));
    CHECK(rules(c.report).empty());
    CHECK_THAT(c.report.inv_phases, approx({800, 300, 100}));
    CHECK_THAT(c.setpoints, approx({-800, -300, -100}));
}

TEST_CASE("S3: calc_grid_p(0) with p_per_phase 1000", "[inverter][scenario]") {
    SystemParams sp;
    sp.p_per_phase = 1000;
    Rig rig(sp);
    rig.consumption(2000, 100, 100);
    auto c = rig.ctl.cycle(rig.in, Target::grid_p(0));
    CHECK(rules(c.report).empty());
    CHECK_THAT(c.report.inv_phases, approx({1000, 600, 600}));
    CHECK_THAT(c.setpoints, approx({-1000, -600, -600}));
}

TEST_CASE("S4: BMS charge limit 50 A, calc_inv_p(-3000): I_MAX then IB_ERR_L", "[inverter][scenario]") {
    Rig rig;
    rig.in.max_charge_current = 50;
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(-3000));
    CHECK(rules(c.report) == std::vector<std::string>{"I_MAX", "IB_ERR_L"});
    auto* imax = find_rule(c.report, Rule::I_MAX);
    REQUIRE(imax);
    bool has_d = false;
    for (auto& [k, v] : imax->values)
        if (k == "d") {
            CHECK(v == near(31.92));
            has_d = true;
        }
    CHECK(has_d);
    CHECK(c.report.dest == near(-2888.89));  // 50 A * 52 V / 0.9
    CHECK(c.report.dest == Approx(-50 * 52 / 0.9));
    CHECK_THAT(c.report.inv_phases, approx(all3(-962.96)));
    CHECK_THAT(c.setpoints, approx(all3(962.96)));
}

TEST_CASE("S5: AllowToDischarge 0, calc_inv_p(1000): I_MIN", "[inverter][scenario]") {
    Rig rig;
    rig.in.allow_to_discharge = false;
    auto r = rig.ctl.calc_inv_p(rig.in, 1000);
    CHECK(rules(r) == std::vector<std::string>{"I_MIN"});
    CHECK_THAT(r.inv_phases, approx(all3(0)));
    auto c = Rig().ctl.cycle(rig.in, Target::inv_p(1000));
    CHECK_THAT(c.setpoints, approx(all3(0)));
}

TEST_CASE("S6: AllowToDischarge 0, PV 20 A, calc_inv_p(2000): I_MIN leaves the PV share", "[inverter][scenario]") {
    Rig rig;
    rig.in.allow_to_discharge = false;
    rig.pv(20);
    auto r = rig.ctl.calc_inv_p(rig.in, 2000);
    CHECK(rules(r) == std::vector<std::string>{"I_MIN"});
    CHECK(r.dest == near(374.4));  // inverter -8 A = pv_margin * i_pv_max; the battery then charges 12 A
    CHECK_THAT(r.inv_phases, approx(all3(124.8)));
}

TEST_CASE("S5/S6/S13 written: the low-battery guard (§18.5) overrides the chain's PV share",
          "[inverter][scenario][guard]") {
    // §20 lists the written values as the negated chain output ([-124.8 x3] for
    // S6, [-156 x3] for S13). §18.5 (a port requirement the original lacks)
    // clamps inverter power to <= 0 whenever AllowToDischarge is false, so the
    // port writes 0 instead. See the report of this change.
    Rig rig;
    rig.in.allow_to_discharge = false;
    rig.pv(20);
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(2000));
    CHECK(rules(c.report) == std::vector<std::string>{"I_MIN", "LOW_BATT"});
    CHECK_THAT(c.report.inv_phases, approx(all3(0)));
    CHECK_THAT(c.setpoints, approx(all3(0)));
}

TEST_CASE("S7: near u_max while charging, calc_inv_p(0): U_MAX forces inverting", "[inverter][scenario]") {
    Rig rig;
    rig.in.battery_voltage = 55.8;
    rig.in.battery_current = 20;  // Victron +20 = charging
    rig.pv(40);
    CHECK(rig.in.u_dc(rig.ctl.params.r_int) == near(55.6));
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(0));
    CHECK(rules(c.report) == std::vector<std::string>{"U_MAX"});
    auto* e = find_rule(c.report, Rule::U_MAX);
    REQUIRE(e);
    CHECK(e->res == near(14));  // i_maxchg +14 A
    CHECK(c.report.dest == near(2702.16));
    CHECK_THAT(c.report.inv_phases, approx(all3(900.72)));
    CHECK_THAT(c.setpoints, approx(all3(-900.72)));
}

TEST_CASE("S8: near u_min while discharging, calc_inv_p(2000): U_MIN", "[inverter][scenario]") {
    Rig rig;
    rig.in.battery_voltage = 48.3;
    rig.in.battery_current = -30;  // Victron -30 = discharging
    CHECK(rig.in.u_dc(0.01) == near(48.6));
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(2000));
    CHECK(rules(c.report) == std::vector<std::string>{"U_MIN"});
    CHECK(find_rule(c.report, Rule::U_MIN)->res == near(14));  // max discharge 14 A
    CHECK(c.report.dest == near(612.36));
    CHECK_THAT(c.report.inv_phases, approx(all3(204.12)));
    CHECK_THAT(c.setpoints, approx(all3(-204.12)));
}

TEST_CASE("S9: PV 80 A (max 100), discharge limit 20 A, calc_inv_p(5000): I_MIN", "[inverter][scenario]") {
    Rig rig;
    rig.pv(80, 100);
    rig.in.max_discharge_current = 20;
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(5000));
    CHECK(rules(c.report) == std::vector<std::string>{"I_MIN"});
    CHECK(find_rule(c.report, Rule::I_MIN)->res == near(-60));  // pvmin 40 -> inverter -60 A
    CHECK(c.report.dest == near(2808));
    CHECK_THAT(c.report.inv_phases, approx(all3(936)));
    CHECK_THAT(c.setpoints, approx(all3(-936)));
}

namespace {
Rig s10_rig() {
    Rig rig;
    rig.in.battery_voltage = 55.9;
    rig.in.battery_current = 10;  // charging 10 A
    rig.pv(60);
    rig.consumption(200, 200, 200);
    return rig;
}
} // namespace

TEST_CASE("S10: U_MAX then P_EXC with excess 300", "[inverter][scenario]") {
    Rig rig = s10_rig();
    auto c = rig.ctl.cycle(rig.in, Target::grid_p(0, 300));
    CHECK(rules(c.report) == std::vector<std::string>{"U_MAX", "P_EXC"});
    CHECK(find_rule(c.report, Rule::U_MAX)->res == near(42));
    CHECK(find_rule(c.report, Rule::P_EXC)->res == near(900));
    CHECK_THAT(c.report.inv_phases, approx(all3(300)));
    CHECK_THAT(c.setpoints, approx(all3(-300)));
}

TEST_CASE("S10b: U_MAX without excess", "[inverter][scenario]") {
    Rig rig = s10_rig();
    auto c = rig.ctl.cycle(rig.in, Target::grid_p(0));
    CHECK(rules(c.report) == std::vector<std::string>{"U_MAX"});
    CHECK(c.report.dest == near(5122.44));
    CHECK_THAT(c.report.inv_phases, approx(all3(1707.48)));
    CHECK_THAT(c.setpoints, approx(all3(-1707.48)));
}

TEST_CASE("S10c: excess -1 is a real number ([QUIRK] P_EXC, literal)", "[inverter][scenario][quirk]") {
    Rig rig = s10_rig();
    auto c = rig.ctl.cycle(rig.in, Target::grid_p(0, -1));
    CHECK(rules(c.report) == std::vector<std::string>{"U_MAX", "P_EXC"});
    CHECK(c.report.dest == near(599));
    CHECK_THAT(c.report.inv_phases, approx(all3(199.67)));
    CHECK_THAT(c.setpoints, approx(all3(-199.67)));
}

TEST_CASE("S13: I_PVD, I_MIN, IB_ERR_H: only the PV current is inverted", "[inverter][scenario][quirk]") {
    Rig rig;
    rig.in.allow_to_discharge = false;
    rig.pv(10, 40);
    auto r = rig.ctl.calc_inv_p(rig.in, 3000);
    CHECK(rules(r) == std::vector<std::string>{"I_PVD", "I_MIN", "IB_ERR_H"});
    CHECK(find_rule(r, Rule::I_PVD)->res == near(34.10));
    CHECK(find_rule(r, Rule::I_MIN)->res == near(-16));  // pvmin 16; i_batt then 6
    CHECK(find_rule(r, Rule::IB_ERR_H)->values[0].second == near(6));
    CHECK(find_rule(r, Rule::IB_ERR_H)->res == 0);
    CHECK(r.dest == near(468));  // the 10 A of PV
    CHECK_THAT(r.inv_phases, approx(all3(156)));
    // Written: 0 because of the §18.5 guard (see "S5/S6/S13 written").
    CHECK_THAT(Rig().ctl.cycle(rig.in, Target::inv_p(3000)).setpoints, approx(all3(0)));
}

TEST_CASE("S14: calc_batt_i(-10) charges the battery 10 A from 30 A of PV", "[inverter][scenario]") {
    Rig rig;
    rig.pv(30);
    auto c = rig.ctl.cycle(rig.in, Target::batt_i(-10));
    CHECK(rules(c.report).empty());
    CHECK(c.report.dest == near(936));
    CHECK_THAT(c.report.inv_phases, approx(all3(312)));
    CHECK_THAT(c.setpoints, approx(all3(-312)));
}

TEST_CASE("S14b: calc_batt_i(200) is clamped to 100 A, then I_MIN", "[inverter][scenario]") {
    Rig rig;
    rig.pv(30);
    auto c = rig.ctl.cycle(rig.in, Target::batt_i(200));
    CHECK(rules(c.report) == std::vector<std::string>{"I_MIN"});  // pvmin 12
    CHECK(c.report.init == near(130 * 52 * 0.9));                // -(100) - 30 A of inverter current
    CHECK(c.report.dest == near(5241.6));
    CHECK_THAT(c.report.inv_phases, approx(all3(1747.2)));
    CHECK_THAT(c.setpoints, approx(all3(-1747.2)));
}

TEST_CASE("S15: calc_inv_p(1500, phase=2) puts everything on L2", "[inverter][scenario]") {
    Rig rig;
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(1500, std::nullopt, 2));
    CHECK(rules(c.report).empty());
    CHECK_THAT(c.report.inv_phases, approx({0, 1500, 0}));
    CHECK_THAT(c.setpoints, approx({0, -1500, 0}));
}

TEST_CASE("S16: sample cfg, calc_grid_p(-50) exports 50 W", "[inverter][scenario]") {
    Rig rig(sample_cfg());
    rig.consumption(300, 300, 300);
    auto c = rig.ctl.cycle(rig.in, Target::grid_p(-50));
    CHECK(rules(c.report).empty());
    CHECK(c.report.dest == near(950));
    CHECK_THAT(c.report.inv_phases, approx(all3(316.67)));
    CHECK_THAT(c.setpoints, approx(all3(-316.67)));
}

TEST_CASE("S16b: sample cfg, calc_grid_p(2000): P_MIN caps charging at -200", "[inverter][scenario]") {
    Rig rig(sample_cfg());
    rig.consumption(300, 300, 300);
    auto c = rig.ctl.cycle(rig.in, Target::grid_p(2000));
    CHECK(rules(c.report) == std::vector<std::string>{"P_MIN"});
    CHECK(c.report.init == near(-1100));
    CHECK(c.report.dest == near(-200));
    CHECK_THAT(c.report.inv_phases, approx(all3(-66.67)));
    CHECK_THAT(c.setpoints, approx(all3(66.67)));
}

TEST_CASE("remote-mode calls of §20 (consumption 300 W per phase)", "[inverter][scenario][remote]") {
    struct Case {
        const char* name;
        Target target;
        double pv;
        double sum;
        double per_phase;
    };
    const Case cases[] = {
        {"state 0, power 1000, power_ref 1500", Target::grid_p(-1000, 500), 0, 1900, 633.33},
        {"state 0, power 1000, power_ref 0", Target::grid_p(-1000, -1000), 0, 900, 300},
        {"state 0, power 1000, power_ref 1500, limit 0.5", Target::grid_p(-500, 250), 0, 1400, 466.67},
        {"state 2, solar_p 500 W, PV 10 A", Target::inv_p(500, 0.0), 10, 500, 166.67},
        {"state 1, power_low 100", Target::inv_p(-100, 0.0), 0, -100, -33.33},
        {"state 3, solar 6000 W, PV 110 A, power 1000, power_ref 8000", Target::grid_p(-5100, 2900), 110, 6000, 2000},
    };
    for (auto& k : cases) {
        INFO(k.name);
        Rig rig;
        rig.consumption(300, 300, 300);
        rig.pv(k.pv);
        auto c = rig.ctl.cycle(rig.in, k.target);
        CHECK(c.report.setpoint == near(k.sum));
        CHECK_THAT(c.report.inv_phases, approx(all3(k.per_phase)));
    }
}

// ---------------------------------------------------------------- each rule, firing and not

TEST_CASE("I_PVD fires only when i_pv_max > pv_delta and ib_max + i_pv < pv_delta", "[inverter][rule]") {
    SECTION("fires") {
        Rig rig;
        rig.in.max_discharge_current = 5;
        rig.pv(10, 40);
        auto r = rig.ctl.calc_inv_p(rig.in, 500);
        REQUIRE(find_rule(r, Rule::I_PVD));
        // (ib_max - i_inv) - pv_delta with i_inv not recomputed
        CHECK(find_rule(r, Rule::I_PVD)->res == Approx(5 + 500 / 52.0 / 0.9 - 30));
    }
    SECTION("not: i_pv_max == pv_delta") {
        Rig rig;
        rig.in.max_discharge_current = 5;
        rig.pv(10, 30);
        CHECK_FALSE(find_rule(rig.ctl.calc_inv_p(rig.in, 500), Rule::I_PVD));
    }
    SECTION("not: ib_max + i_pv == pv_delta") {
        Rig rig;
        rig.in.max_discharge_current = 20;
        rig.pv(10, 40);
        CHECK_FALSE(find_rule(rig.ctl.calc_inv_p(rig.in, 500), Rule::I_PVD));
    }
}

TEST_CASE("I_PVD [QUIRK, literal] can mask IB_ERR_H: the battery discharges above ib_max",
          "[inverter][rule][quirk]") {
    // ib_max 5 A, PV 10 A (its maximum 50 A, so pvmin 20 A and I_MIN stays
    // quiet), inverter 25 A. Without I_PVD, i_batt = 15 A > 5 A and IB_ERR_H
    // would cut the inverter to 15 A. I_PVD lowers the stale i_batt to 0 A, so
    // IB_ERR_H does not fire and the battery supplies 15 A against a 5 A limit.
    Rig rig;
    rig.in.max_discharge_current = 5;
    rig.pv(10, 50);
    const double p = 25 * 52 * 0.9;  // 1170 W = 25 A of inverter current
    auto r = rig.ctl.calc_inv_p(rig.in, p);
    CHECK(rules(r) == std::vector<std::string>{"I_PVD"});
    CHECK(r.dest == near(1170));
    CHECK(-i_from_p(r.dest, 52, 0.9, true) - rig.in.i_pv() == near(15));  // what the battery really supplies
}

TEST_CASE("U_MAX: not at 52 V, and top_off moves the taper up to u_max", "[inverter][rule]") {
    Rig rig;
    CHECK_FALSE(find_rule(rig.ctl.calc_inv_p(rig.in, -3000), Rule::U_MAX));
    // S7 with top_off: ceiling 70 A * (0 - 0.4) / 0.5 = -56 A: charging 40 A is allowed.
    SystemParams sp;
    sp.top_off = true;
    Rig top(sp);
    top.in.battery_voltage = 55.8;
    top.in.battery_current = 20;
    top.pv(40);
    auto r = top.ctl.calc_inv_p(top.in, 0);
    CHECK(rules(r).empty());
    CHECK(r.dest == 0);
}

TEST_CASE("U_MIN: not at 52 V, fires at 48.6 V open-circuit", "[inverter][rule]") {
    Rig rig;
    CHECK_FALSE(find_rule(rig.ctl.calc_inv_p(rig.in, 4000), Rule::U_MIN));
    rig.in.battery_voltage = 48.5;  // u_dc 48.5: 0.5 V above u_min -> limit 0 A
    auto r = rig.ctl.calc_inv_p(rig.in, 1000);
    REQUIRE(find_rule(r, Rule::U_MIN));
    CHECK(find_rule(r, Rule::U_MIN)->res == near(0));
    CHECK(r.dest == near(0));
}

TEST_CASE("I_MAX: fires when DVCC leaves less than pv_delta of PV headroom", "[inverter][rule][quirk]") {
    Rig rig;
    CHECK_FALSE(find_rule(rig.ctl.calc_inv_p(rig.in, -3000), Rule::I_MAX));  // 100 A limit: headroom 48 A
    rig.in.max_charge_current = 50;                                           // headroom -1.9 A
    auto r = rig.ctl.calc_inv_p(rig.in, -3000);
    REQUIRE(find_rule(r, Rule::I_MAX));
    // [QUIRK, literal]: i_batt -= d makes the battery charge *more* (-51.92 - 31.92).
    CHECK(find_rule(r, Rule::I_MAX)->res == near(-83.85));
}

TEST_CASE("P_MIN / P_MAX: the inverter's AC limits", "[inverter][rule]") {
    Rig rig;
    rig.in.max_discharge_current = 400;
    rig.in.max_charge_current = 400;
    auto r = rig.ctl.calc_inv_p(rig.in, 15000);
    CHECK(rules(r) == std::vector<std::string>{"P_MAX"});
    CHECK(r.dest == near(12000));
    r = rig.ctl.calc_inv_p(rig.in, 11999);
    CHECK(rules(r).empty());
    SystemParams sp;
    sp.pg_min = -2000;
    Rig low(sp);
    r = low.ctl.calc_inv_p(low.in, -2500);
    CHECK(rules(r) == std::vector<std::string>{"P_MIN"});
    CHECK(r.dest == near(-2000));
    CHECK(rules(low.ctl.calc_inv_p(low.in, -2000)).empty());
}

TEST_CASE("I_MIN: fires above pvmin + ib_max, not below", "[inverter][rule]") {
    Rig rig;
    rig.pv(0, 50);  // pvmin 20 A
    rig.in.max_discharge_current = 10;
    auto r = rig.ctl.calc_inv_p(rig.in, 29 * 52 * 0.9);  // 29 A > 30 A? no
    CHECK_FALSE(find_rule(r, Rule::I_MIN));
    r = rig.ctl.calc_inv_p(rig.in, 31 * 52 * 0.9);
    REQUIRE(find_rule(r, Rule::I_MIN));
    CHECK(find_rule(r, Rule::I_MIN)->res == near(-30));
}

TEST_CASE("IB_ERR_L / IB_ERR_H: the BMS current limits", "[inverter][rule]") {
    Rig rig;
    CHECK(rules(rig.ctl.calc_inv_p(rig.in, -4000)).empty());  // 69 A of charging, limit 100
    rig.in.max_charge_current = 60;
    auto r = rig.ctl.calc_inv_p(rig.in, -3000);  // I_MAX first, as in S4
    CHECK(rules(r) == std::vector<std::string>{"I_MAX", "IB_ERR_L"});
    CHECK(r.dest == near(-60 * 52 / 0.9));
    // IB_ERR_H after P_MAX (stale i_batt): see D3 below.
}

TEST_CASE("P_EXC: caps only positive power above request + excess", "[inverter][rule]") {
    Rig rig;
    CHECK(rules(rig.ctl.calc_inv_p(rig.in, 1000, 0.0)).empty());    // p == op + 0: not above
    CHECK(rules(rig.ctl.calc_inv_p(rig.in, -1000, -500.0)).empty()); // p <= 0: never
    auto r = rig.ctl.calc_inv_p(rig.in, 1000, -300.0);
    CHECK(rules(r) == std::vector<std::string>{"P_EXC"});
    CHECK(r.dest == near(700));
}

TEST_CASE("D3 FINAL_CLAMP: IB_ERR_H after P_MAX would end above pg_max", "[inverter][rule]") {
    // The spec's example: 15 kW with a 300 A discharge limit ends at 14 040 W.
    Rig rig;
    rig.in.max_discharge_current = 300;
    auto r = rig.ctl.calc_inv_p(rig.in, 15000);
    CHECK(rules(r) == std::vector<std::string>{"P_MAX", "IB_ERR_H", "FINAL_CLAMP"});
    auto* e = find_rule(r, Rule::FINAL_CLAMP);
    REQUIRE(e);
    CHECK(e->values[0].second == near(14040));
    CHECK(r.dest == 12000);
}

TEST_CASE("D3 FINAL_CLAMP on the charging side", "[inverter][rule]") {
    SystemParams sp;
    sp.pg_min = -5000;
    Rig rig(sp);
    rig.in.max_charge_current = 150;
    auto r = rig.ctl.calc_inv_p(rig.in, -10000);
    CHECK(rules(r) == std::vector<std::string>{"I_MAX", "P_MIN", "IB_ERR_L", "FINAL_CLAMP"});
    CHECK(find_rule(r, Rule::FINAL_CLAMP)->values[0].second == near(-150 * 52 / 0.9));
    CHECK(r.dest == -5000);
}

TEST_CASE("limit entries carry operands and text for GetState and the DEBUG log", "[inverter][rule]") {
    Rig rig;
    rig.in.max_charge_current = 50;
    auto r = rig.ctl.calc_inv_p(rig.in, -3000);
    auto line = describe(r.limits.at(0));
    CHECK_THAT(line, Contains("I_MAX: (-ib_min - i_inv) - i_pv < pv_delta -> i_batt -= d"));
    CHECK_THAT(line, Contains("d=31.92"));
    CHECK(r.init == -3000);
    CHECK(r.setpoint == r.dest);
}
