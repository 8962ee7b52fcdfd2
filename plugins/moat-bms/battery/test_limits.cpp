// The pack limits and derating: the worked examples (±1e-3), the decay of
// the limit memories in time (not per read), thresholds and mid voltage.
#include <cmath>

#include "test_battery_support.hpp"

using namespace moat::bms::battery;
using namespace moat::bms::battery::test;
using Catch::Detail::Approx;

namespace {

std::vector<double> with_one(int n, double rest, double one) {
    auto v = cells(n - 1, rest);
    v.push_back(one);
    return v;
}

struct Row {
    std::vector<double> v;
    double sum, maxv, minv, mcv, blv, mcc, mdc, umax_p, umin_p;
};

} // namespace

TEST_CASE("the worked limit examples: max/min voltage, published limits, midpoints") {
    BatteryConfig c = bms_cfg();
    Row rows[] = {
        {with_one(16, 3.30, 3.38), 52.88, 53.68, 46.64, 52.8748, 45.9404, 150, 150, 55.84, 44.12},
        {with_one(16, 3.40, 3.50), 54.50, 54.58, 46.70, 53.7613, 45.9995, 66.667, 150, 56.29, 44.15},
        {with_one(16, 3.02, 2.95), 48.25, 57.07, 48.20, 56.2140, 47.4770, 150, 75.0, 57.535, 44.90},
    };
    for (const Row& r : rows) {
        CAPTURE(r.sum);
        CellStats s = cell_stats(r.v);
        CHECK(s.sum == Approx(r.sum).margin(1e-3));
        PackLimit hi = max_voltage_target(c.cell, r.v), lo = min_voltage_target(c.cell, r.v);
        CHECK_FALSE(hi.bypass);
        CHECK(hi.value == Approx(r.maxv).margin(1e-3));
        CHECK(lo.value == Approx(r.minv).margin(1e-3));
        CHECK(hi.value * c.cell.corr == Approx(r.mcv).margin(1e-3));
        CHECK(lo.value * c.cell.corr == Approx(r.blv).margin(1e-3));
        CHECK(c.i_ext_max * pct_charge(c.cell, s.max) == Approx(r.mcc).margin(1e-3));
        CHECK(-c.i_ext_min * pct_discharge(c.cell, s.min) == Approx(r.mdc).margin(1e-3));
        CHECK((hi.value + c.u_max) / 2 == Approx(r.umax_p).margin(1e-3));
        CHECK((lo.value + c.u_min) / 2 == Approx(r.umin_p).margin(1e-3));
    }
}

TEST_CASE("a cell beyond the operating range publishes the clamped sum and leaves the memory alone") {
    BatteryConfig c = bms_cfg();
    auto high = with_one(16, 3.30, 3.60);  // above ext.max 3.58
    PackLimit p = max_voltage_target(c.cell, high);
    CHECK(p.bypass);
    CHECK(p.value == Approx(15 * 3.30 + 3.58));
    LimitMemory m(true);
    m.update(max_voltage_target(c.cell, with_one(16, 3.30, 3.38)), 0, c.cell.decay_s);
    m.update(p, 2, c.cell.decay_s);
    CHECK(*m.value() == Approx(15 * 3.30 + 3.58));
    m.update(max_voltage_target(c.cell, with_one(16, 3.30, 3.38)), 2, c.cell.decay_s);
    CHECK(*m.value() == Approx(53.68));  // the memory kept 53.68 through the bypass
}

TEST_CASE("limit memories: the unsafe direction at once, the safe one decays with time, not with reads") {
    BatteryConfig c = bms_cfg();
    auto a = with_one(16, 3.30, 3.38);  // max 53.68
    auto b = with_one(16, 3.40, 3.50);  // max 54.58
    LimitMemory m(true);
    m.update(max_voltage_target(c.cell, b), 0, c.cell.decay_s);
    CHECK(*m.value() == Approx(54.58).margin(1e-9));
    // One cycle of 0.43 s is the 2022 rate: 0.1 % of the difference.
    LimitMemory one = m;
    one.update(max_voltage_target(c.cell, a), 0.43, c.cell.decay_s);
    CHECK(*one.value() == Approx(54.58 + 0.001 * (53.68 - 54.58)).epsilon(1e-12));
    // 430 s of 2 s cycles equals one 430 s step (time-based, not per evaluation).
    LimitMemory many = m, single = m;
    for (int k = 0; k < 215; ++k) many.update(max_voltage_target(c.cell, a), 2, c.cell.decay_s);
    single.update(max_voltage_target(c.cell, a), 430, c.cell.decay_s);
    CHECK(*many.value() == Approx(*single.value()).epsilon(1e-9));
    double expect = 53.68 + (54.58 - 53.68) * std::pow(0.999, 1000.0);
    CHECK(*single.value() == Approx(expect).epsilon(1e-9));
    // Reading the value changes nothing.
    double before = *many.value();
    for (int k = 0; k < 100; ++k) (void)many.value();
    CHECK(*many.value() == before);
    // A higher target is taken at once.
    many.update(max_voltage_target(c.cell, b), 2, c.cell.decay_s);
    CHECK(*many.value() == Approx(54.58).margin(1e-9));
}

TEST_CASE("the min memory falls at once and rises slowly") {
    BatteryConfig c = bms_cfg();
    LimitMemory m(false);
    m.update(min_voltage_target(c.cell, with_one(16, 3.02, 2.95)), 0, c.cell.decay_s);  // 48.20
    m.update(min_voltage_target(c.cell, with_one(16, 3.30, 3.38)), 2, c.cell.decay_s);  // target 46.64: lower, taken
    CHECK(*m.value() == Approx(46.64).margin(1e-3));
    m.update(min_voltage_target(c.cell, with_one(16, 3.02, 2.95)), 2, c.cell.decay_s);
    CHECK(*m.value() == Approx(46.64 + decay_fraction(2, 430) * (48.20 - 46.64)).margin(1e-6));
}

TEST_CASE("decay_s scales the rate") {
    CHECK(decay_fraction(0.43, 430) == Approx(0.001).epsilon(1e-12));
    CHECK(decay_fraction(0.043, 43) == Approx(0.001).epsilon(1e-12));
    CHECK(decay_fraction(0, 430) == 0);
    CHECK(decay_fraction(-5, 430) == 0);  // a clock going backwards never moves the memory the wrong way
}

TEST_CASE("cell thresholds with bms.cfg") {
    CellThresholds t = cell_thresholds(bms_cfg().cell);
    CHECK(t.hi_set == Approx(3.605));
    CHECK(t.hi_clear == Approx(3.59667).margin(1e-5));
    CHECK(t.lo_set == Approx(2.80));
    CHECK(t.lo_clear == Approx(2.8333).margin(1e-4));
}

TEST_CASE("mid voltage of the first worked example: 0.3021 %") {
    MidVoltage m = mid_voltage(with_one(16, 3.30, 3.38));
    CHECK(m.lower == Approx(26.40));
    CHECK(m.deviation_pct == Approx(0.3021).margin(1e-4));
    MidVoltage odd = mid_voltage(std::vector<double>{3.0, 3.1, 3.2});
    CHECK(odd.lower == Approx(3.0 + 3.1 / 2));
}
