// The modes' per-cycle computations (§14).
#include "inverter_test_support.hpp"

#include "modes.hpp"

using namespace moat::inverter;
using namespace moat::inverter::test;

namespace {
Op with_defaults(Mode m, Op args = {}) { return params_for(m, std::nullopt, {}, args, {}); }
} // namespace

TEST_CASE("simple modes: their target per cycle", "[inverter][modes]") {
    CHECK(simple_target(Mode::off, with_defaults(Mode::off)) == Target::fixed(0));
    CHECK(simple_target(Mode::idle, with_defaults(Mode::idle, {{"power", -300.0}})) == Target::fixed(-300));
    CHECK(simple_target(Mode::p_grid, with_defaults(Mode::p_grid, {{"power", -50.0}, {"excess", -1.0}})) ==
          Target::grid_p(-50, -1.0));
    CHECK(simple_target(Mode::p_grid, with_defaults(Mode::p_grid)) == Target::grid_p(0));
    CHECK(simple_target(Mode::p_inv, with_defaults(Mode::p_inv, {{"power", 1500.0}, {"phase", 2.0}})) ==
          Target::inv_p(1500, std::nullopt, 2));
    CHECK(simple_target(Mode::i_batt, with_defaults(Mode::i_batt, {{"current", -10.0}})) == Target::batt_i(-10));
    CHECK_THROWS_AS(simple_target(Mode::remote, {}), std::logic_error);
    CHECK_THROWS_AS(simple_target(Mode::analyze, {}), std::logic_error);
    // A parameter missing from op falls back to the built-in default.
    CHECK(param({}, Mode::soc, "dest_soc") == 0.5);
}

TEST_CASE("off / idle: power split evenly, no limits", "[inverter][modes]") {
    Rig rig;
    rig.in.max_discharge_current = 10;  // the chain would allow ~470 W
    auto c = rig.ctl.cycle(rig.in, simple_target(Mode::idle, with_defaults(Mode::idle, {{"power", 30000.0}})));
    CHECK(rules(c.report).empty());
    CHECK_THAT(c.report.inv_phases, approx(all3(10000), 0));
    CHECK_THAT(c.setpoints, approx(all3(-10000), 0));
    CHECK(rig.ctl.stepper.last_p == 0);  // no rate limiting involved
    c = rig.ctl.cycle(rig.in, Target::fixed(0));
    CHECK_THAT(c.setpoints, approx(all3(0), 0));
    CHECK_FALSE(std::signbit(c.setpoints[0]));  // never "-0" on the bus
}

TEST_CASE("soc mode: hold, charge or discharge toward dest_soc", "[inverter][modes][soc]") {
    Op op = with_defaults(Mode::soc, {{"dest_soc", 0.6}, {"power_in", 2000.0}, {"power_out", -1500.0}, {"excess", 100.0}});
    SocReport r;
    CHECK(soc_target(op, 0.59, &r) == Target::batt_i(0));
    CHECK(r.delta == 0);
    CHECK_FALSE(r.power);
    CHECK(soc_target(op, 0.5, &r) == Target::grid_p(2000, 100.0));
    CHECK(r.delta == Approx(0.1));
    CHECK(r.power == 2000);
    CHECK(soc_target(op, 0.7, &r) == Target::grid_p(-1500, 100.0));
    CHECK(r.delta == Approx(-0.1));
    CHECK(r.now == 0.7);
    CHECK(r.dest == 0.6);
    // [QUIRK, literal] every round starts with a cycle at power_in.
    CHECK(soc_first_target(op) == Target::grid_p(2000, 100.0));
}

TEST_CASE("remote: clamped parameters, written back", "[inverter][modes][remote]") {
    Op op = with_defaults(Mode::remote);
    RemoteParams rp = remote_params(op);
    CHECK(rp.soc_low == 0.2);
    CHECK(rp.soc_low_zero == Approx(0.18));
    CHECK(rp.soc_low_ok == Approx(0.22));
    CHECK(rp.soc_high == 0.9);
    CHECK(rp.soc_high_ok == Approx(0.88));  // [QUIRK, literal]: at least soc_high - 0.02
    CHECK(rp.state == 3);
    CHECK(op.at("soc_low_zero") == rp.soc_low_zero);
    CHECK(op.at("soc_high_ok") == rp.soc_high_ok);

    op = with_defaults(Mode::remote, {{"power", 1000.0}, {"power_low", 100.0}, {"soc_low", 0.25}, {"soc_low_zero", 0.2},
                                      {"soc_low_ok", 0.3}});
    rp = remote_params(op);
    CHECK(rp.soc_low == 0.25);
    CHECK(rp.soc_low_zero == 0.2);
    CHECK(rp.soc_low_ok == 0.3);
    CHECK(rp.soc_high == 0.9);
    CHECK(rp.soc_high_ok == Approx(0.88));

    op = with_defaults(Mode::remote, {{"power", -5.0}, {"power_ref", -1.0}, {"power_low", -3.0}, {"limit", 1.5},
                                      {"soc_low", 0.9}, {"soc_high", 0.99}, {"power_override", -1.0}});
    rp = remote_params(op);
    CHECK(rp.power == 0);
    CHECK(rp.power_ref == 0);
    CHECK(rp.power_low == 0);
    CHECK(rp.limit == 1);
    CHECK(rp.soc_low == 0.8);
    CHECK(rp.soc_high == 0.97);
    CHECK_FALSE(rp.power_override);         // -1 removes the override
    CHECK_FALSE(op.at("power_override"));
    CHECK(op.at("power") == 0);
}

TEST_CASE("remote: the state machine trace of §14.7", "[inverter][modes][remote]") {
    SECTION("sample cfg") {
        Op op = with_defaults(Mode::remote, {{"power", 1000.0}, {"power_low", 100.0}, {"soc_low", 0.25},
                                             {"soc_low_zero", 0.2}, {"soc_low_ok", 0.3}});
        const std::pair<double, int> trace[] = {
            {0.5, 0},  {0.3, 0},  {0.26, 0}, {0.25, 2}, {0.22, 2}, {0.20, 1}, {0.19, 1},
            {0.22, 1}, {0.25, 2}, {0.27, 2}, {0.29, 2}, {0.30, 0}, {0.31, 0}, {0.87, 0},
            {0.89, 0}, {0.90, 3}, {0.95, 3}, {0.89, 3}, {0.88, 0}, {0.87, 0},
        };
        for (auto [soc, state] : trace) {
            INFO("soc " << soc);
            RemoteParams rp = remote_params(op);
            int s = remote_state(rp.state, soc, rp);
            CHECK(s == state);
            op["mode"] = s;  // what remote_step does
        }
    }
    SECTION("no params") {
        Op op = with_defaults(Mode::remote);
        const std::pair<double, int> trace[] = {{0.22, 0}, {0.20, 2}, {0.19, 2}, {0.22, 0}};
        for (auto [soc, state] : trace) {
            INFO("soc " << soc);
            RemoteParams rp = remote_params(op);
            int s = remote_state(rp.state, soc, rp);
            CHECK(s == state);
            op["mode"] = s;
        }
    }
}

TEST_CASE("remote_step keeps the state in op", "[inverter][modes][remote]") {
    Op op = with_defaults(Mode::remote, {{"power", 1000.0}});
    Inputs in = defaults();
    in.soc_percent = 50;
    in.consumption = {300, 300, 300};
    RemoteReport rep;
    CHECK(remote_step(op, in, 0, &rep) == Target::grid_p(-1000, -1000.0));
    CHECK(op.at("mode") == 0);  // 3 -> 0 via rule 3b
    CHECK(rep.mode == 0);
    CHECK(rep.p_want == 1000);
    CHECK(rep.exc == -1000);
    in.soc_percent = 95;
    remote_step(op, in, 0);
    CHECK(op.at("mode") == 3);
}

TEST_CASE("remote: the action per state (§20 remote examples)", "[inverter][modes][remote]") {
    Inputs in = defaults();
    in.consumption = {300, 300, 300};
    auto rp_of = [](Op args) {
        Op op = with_defaults(Mode::remote, std::move(args));
        return remote_params(op);
    };
    RemoteReport rep;
    CHECK(remote_target(0, rp_of({{"power", 1000.0}, {"power_ref", 1500.0}}), in, 0) == Target::grid_p(-1000, 500.0));
    CHECK(remote_target(0, rp_of({{"power", 1000.0}, {"power_ref", 0.0}}), in, 0) == Target::grid_p(-1000, -1000.0));
    CHECK(remote_target(0, rp_of({{"power", 1000.0}, {"power_ref", 1500.0}, {"limit", 0.5}}), in, 0) ==
          Target::grid_p(-500, 250.0));
    CHECK(remote_target(2, rp_of({}), in, 500, &rep) == Target::inv_p(500, 0.0));  // min(solar, consumption)
    CHECK(rep.ip == 500);
    CHECK(remote_target(2, rp_of({}), in, 5000) == Target::inv_p(900, 0.0));
    CHECK(remote_target(1, rp_of({{"power_low", 100.0}}), in, 500) == Target::inv_p(-100, 0.0));
    CHECK(remote_target(2, rp_of({{"power_low", 100.0}, {"low_grid", 0.0}}), in, 500) == Target::inv_p(-100, 0.0));
    CHECK(remote_target(3, rp_of({{"power", 1000.0}, {"power_ref", 8000.0}}), in, 6000, &rep) ==
          Target::grid_p(-5100, 2900.0));
    CHECK(rep.p_want == 5100);
    CHECK(remote_target(3, rp_of({{"power", 1000.0}, {"power_ref", 8000.0}}), in, 500) ==
          Target::grid_p(-1000, 7000.0));  // no surplus: export the target
    CHECK(remote_target(0, rp_of({{"power_override", -105.0}}), in, 0) == Target::inv_p(-105, 0.0));
    CHECK(remote_target(3, rp_of({{"power_override", -35.0}}), in, 6000) == Target::inv_p(-35, 0.0));
}

TEST_CASE("remote at a real SoC near the ends: the first cycles are rate-limited", "[inverter][modes][remote]") {
    // §20's remote figures use the common SoC of 50 %. State 3 needs SoC >= 0.9,
    // where §7.1 rate-limits: from last_p 0, the first cycle moves 35 % of the way.
    Rig rig;
    rig.consumption(300, 300, 300);
    rig.pv(110);
    rig.in.soc_percent = 95;
    Op op = with_defaults(Mode::remote, {{"power", 1000.0}, {"power_ref", 8000.0}});
    auto t = remote_step(op, rig.in, 6000);
    CHECK(t == Target::grid_p(-5100, 2900.0));
    auto c = rig.ctl.cycle(rig.in, t);
    CHECK(c.report.dest == near(6000));
    CHECK(c.report.setpoint == near(2100));
}
