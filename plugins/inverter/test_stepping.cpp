// Rate limiting near the ends of the SoC range (§7.1) and §20 S11, S12.
#include "inverter_test_support.hpp"

#include "stepping.hpp"

using namespace moat::inverter;
using namespace moat::inverter::test;

TEST_CASE("small_p_step", "[inverter][stepping]") {
    CHECK(small_p_step(1000, 1099, 100));        // |a - b| < p_step
    CHECK_FALSE(small_p_step(0, 2000, 100));     // exactly one of them > 0
    CHECK_FALSE(small_p_step(-500, 1000, 100));
    CHECK(small_p_step(1000, 1150, 100));        // 1100/1250 = 0.88: inside (10/12, 12/10)
    CHECK_FALSE(small_p_step(1000, 1300, 100));  // 1100/1400 = 0.786
    CHECK(small_p_step(-1000, -1150, 100));      // both <= 0: the ratio decides
    CHECK_FALSE(small_p_step(0, -500, 100));     // 100/600
    CHECK(small_p_step(2000, 1732.76, 100));     // 2100/1832.76 = 1.146
}

TEST_CASE("small_p_step: exactly-one-positive is tested after the distance", "[inverter][stepping]") {
    CHECK(small_p_step(-50, 40, 100));   // 90 apart: small, although the signs differ
    CHECK_FALSE(small_p_step(-60, 40, 100));
}

TEST_CASE("S11: 1 phase, SoC 90 %, calc_inv_p(2000) five times", "[inverter][stepping][scenario]") {
    Rig rig;
    rig.in.n_phase = 1;
    rig.in.soc_percent = 90;
    const double expected[] = {700, 1345.64, 1732.76, 2000, 2000};
    const int steps[] = {2, 3, 4, 1, 1};
    for (int i = 0; i < 5; ++i) {
        INFO("call " << i + 1);
        auto c = rig.ctl.cycle(rig.in, Target::inv_p(2000));
        CHECK(c.report.dest == 2000);
        CHECK(c.report.setpoint == near(expected[i]));
        CHECK(rig.ctl.stepper.step == steps[i]);
        CHECK_THAT(c.report.inv_phases, approx({expected[i]}));
        CHECK_THAT(c.setpoints, approx({-expected[i]}));
        CHECK((find_rule(c.report, Rule::P_GRAD) != nullptr) == (steps[i] > 1));
    }
}

TEST_CASE("S11: the P_GRAD record (D4) is [pd, last_p, p, np]", "[inverter][stepping]") {
    Rig rig;
    rig.in.n_phase = 1;
    rig.in.soc_percent = 90;
    rig.ctl.cycle(rig.in, Target::inv_p(2000));
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(2000));
    auto* e = find_rule(c.report, Rule::P_GRAD);
    REQUIRE(e);
    CHECK_THAT(e->step, approx({645.64, 700, 2000, 1345.64}));
    CHECK(e->res == near(1345.64));
}

namespace {
Rig s12_rig() {
    Rig rig;
    rig.in.n_phase = 1;
    rig.in.soc_percent = 10;
    rig.ctl.stepper.reset(1000);
    return rig;
}
} // namespace

TEST_CASE("S12: SoC 10 %, last 1000: small step to 1150", "[inverter][stepping][scenario]") {
    Rig rig = s12_rig();
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(1150));
    CHECK(c.report.setpoint == near(1150));
    CHECK_THAT(c.setpoints, approx({-1150}));
    CHECK_FALSE(find_rule(c.report, Rule::P_GRAD));
}

TEST_CASE("S12b: sign change: step 2 to 475", "[inverter][stepping][scenario]") {
    Rig rig = s12_rig();
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(-500));
    CHECK(rig.ctl.stepper.step == 2);
    CHECK(c.report.setpoint == near(475));
    CHECK_THAT(c.setpoints, approx({-475}));
}

TEST_CASE("S12c: ratio 1100/1400 outside the band: step 2 to 1105", "[inverter][stepping][scenario]") {
    Rig rig = s12_rig();
    auto c = rig.ctl.cycle(rig.in, Target::inv_p(1300));
    CHECK(rig.ctl.stepper.step == 2);
    CHECK(c.report.setpoint == near(1105));
    CHECK_THAT(c.setpoints, approx({-1105}));
}

TEST_CASE("stepping: the SoC band is inclusive, both ends limited", "[inverter][stepping]") {
    SystemParams sp;
    for (double soc : {0.2, 0.5, 0.8}) {
        Stepper s;
        CHECK(s.next(2000, soc, sp) == 2000);
    }
    for (double soc : {0.0, 0.19, 0.81, 1.0}) {
        Stepper s;
        CHECK(s.next(2000, soc, sp) == near(700));
    }
}

TEST_CASE("stepping: a step is at least p_step, in the direction of the change", "[inverter][stepping]") {
    SystemParams sp;
    Stepper s;
    s.reset(0);
    // Increment 250 * 0.35 = 87.5 < 100 -> 100; the step is still not small:
    // 0 -> -250 is 250 apart and the ratio 100/350 is outside the band.
    CHECK(s.next(-250, 0.1, sp) == near(-100));
    CHECK(s.dest_p == -250);
    CHECK(s.last_p == near(-100));
}

TEST_CASE("stepping: a new destination restarts at step 2", "[inverter][stepping]") {
    SystemParams sp;
    Stepper s;
    s.next(2000, 0.9, sp);   // step 2 -> 700
    s.next(2000, 0.9, sp);   // step 3
    CHECK(s.step == 3);
    s.next(-2000, 0.9, sp);  // not the same goal
    CHECK(s.step == 2);
}
