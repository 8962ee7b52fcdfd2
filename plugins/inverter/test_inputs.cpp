// Reading the inputs: missing and implausible values (§3, §18.3).
#include "inverter_test_support.hpp"

using namespace moat::inverter;
using namespace moat::inverter::test;
using Catch::Matchers::VectorContains;

namespace {
Readings complete() {
    Readings r;
    r.n_phase = 3;
    r.pv_current = 12;
    r.battery_voltage = 52.0;
    r.battery_current = -10;
    r.vebus_current = -20;
    r.soc_percent = 50;
    for (int k = 0; k < 3; ++k) {
        r.consumption[k] = 100 * (k + 1);
        r.grid[k] = 10;
        r.consumption_on_output[k] = 5;
        r.hub4_setpoint[k] = -100;
        r.ac_in_power[k] = -90;
    }
    r.low_voltage = 48;
    r.max_charge_voltage = 56;
    r.max_charge_current = 100;
    r.max_discharge_current = 80;
    r.allow_to_charge = true;
    r.allow_to_discharge = false;
    r.capacity = 280;
    return r;
}
} // namespace

TEST_CASE("check_readings: a complete set", "[inverter][inputs]") {
    auto c = check_readings(complete(), 0.01);
    REQUIRE(c.inputs);
    CHECK(c.problems.empty());
    CHECK(c.substituted.empty());
    const Inputs& in = *c.inputs;
    CHECK(in.i_batt() == 10);
    CHECK(in.u_dc(0.01) == Approx(52.1));
    CHECK(in.p_cons() == -600);
    CHECK(in.ib_max() == 0);  // AllowToDischarge false (D1)
    CHECK(in.ib_min() == -100);
    CHECK(in.ac_in_power[2] == -90);
}

TEST_CASE("check_readings: missing required values stop the controller", "[inverter][inputs]") {
    auto r = complete();
    r.max_charge_voltage.reset();
    r.grid[1].reset();
    auto c = check_readings(r, 0.01);
    CHECK_FALSE(c.inputs);
    CHECK(c.problems == std::vector<std::string>{"/Ac/Grid/L2/Power: invalid", "/Info/MaxChargeVoltage: invalid"});
}

TEST_CASE("check_readings: implausible values (§18.3)", "[inverter][inputs]") {
    auto r = complete();
    r.max_charge_voltage = 0;
    r.capacity = -1;
    r.n_phase = 4;
    auto c = check_readings(r, 0.01);
    CHECK_FALSE(c.inputs);
    CHECK_THAT(c.problems, VectorContains(std::string("/Ac/ActiveIn/NumberOfPhases: 4 is not 1..3")));
    for (double bad : {1e300, -1e300, 2.5, std::nan(""), 0.0}) {
        INFO(bad);
        r.n_phase = bad;
        auto b = check_readings(r, 0.01);
        CHECK_FALSE(b.inputs);
        CHECK_THAT(b.problems, VectorContains(fmt::format("/Ac/ActiveIn/NumberOfPhases: {} is not 1..3", bad)));
    }
    CHECK_THAT(c.problems, VectorContains(std::string("/Info/MaxChargeVoltage: 0 <= 0")));
    CHECK_THAT(c.problems, VectorContains(std::string("/Capacity: -1 <= 0")));
    r = complete();
    r.battery_voltage = 0.05;  // charging 10 A: u_dc = 0.05 - 10 * 0.01 < 0
    r.battery_current = 10;
    CHECK_THAT(check_readings(r, 0.01).problems, VectorContains(std::string("u_dc (battery voltage + i_batt * r_int): -0.05 <= 0")));
    r = complete();
    r.low_voltage = 0;
    CHECK_FALSE(check_readings(r, 0.01).inputs);
}

TEST_CASE("check_readings: harmless substitutes", "[inverter][inputs]") {
    auto r = complete();
    r.n_phase = 2;
    r.consumption[2].reset();  // L3 does not exist
    r.pv_current.reset();
    r.consumption_on_output[0].reset();
    r.allow_to_discharge.reset();
    auto c = check_readings(r, 0.01);
    REQUIRE(c.inputs);
    CHECK(c.inputs->n_phase == 2);
    CHECK(c.inputs->pv_current == 0);
    CHECK(c.inputs->consumption_on_output[0] == 0);
    CHECK(c.inputs->ib_max() == 80);  // invalid flag = allowed; the current limit applies
    CHECK(c.substituted == std::vector<std::string>{"/Dc/Pv/Current", "/Ac/ConsumptionOnOutput/L1/Power", "/Io/AllowToDischarge"});
}
