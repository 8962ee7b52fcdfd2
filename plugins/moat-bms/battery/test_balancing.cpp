// Balancing: every branch of one pass, the worked example, n = 0 as "any",
// the n limit checked before adding, forced cells, the exact 2d edge.
#include <cmath>

#include "balancing.hpp"
#include "test_battery_support.hpp"

using namespace moat::bms::battery;
using namespace moat::bms::battery::test;
using Catch::Detail::Approx;

namespace {

std::vector<BalanceCell> ring(const std::vector<double>& v) {
    std::vector<BalanceCell> r;
    for (double x : v) r.push_back({x, std::nullopt, false, false});
    return r;
}

int count_set(const BalancePlan& p) {
    int n = 0;
    for (const auto& a : p.actions) n += a.threshold.has_value();
    return n;
}

} // namespace

TEST_CASE("balancing levels of the worked example") {
    BatteryConfig c = bms_cfg();
    auto v = cells(16, 3.42);
    v[3] = 3.40;
    v[9] = 3.51;  // 1 mV above the start level 3.509
    BalancePlan p = plan_balancing(c, ring(v));
    CHECK(p.start == Approx(3.509));
    CHECK(p.target == Approx(3.45));
    CHECK(p.drop == Approx(3.4572));
    REQUIRE(p.actions.size() == 1);
    CHECK(p.actions[0] == BalanceAction{9, 3.45});
    CHECK(p.busy);
    CHECK_FALSE(p.read_pwm);  // nobody reported balancing yet

    v[9] = 3.508;  // 1 mV below the start level
    BalancePlan q = plan_balancing(c, ring(v));
    CHECK(q.actions.empty());
    CHECK_FALSE(q.busy);
}

TEST_CASE("a spread below 2d or cells below the minimum clear every non-forced threshold") {
    BatteryConfig c = bms_cfg();
    auto r = ring(cells(16, 3.50));
    r[0].volts = 3.411;  // spread 0.089 < 0.1
    r[1].threshold = 3.45;
    r[2].threshold = 3.46, r[2].forced = true;
    BalancePlan p = plan_balancing(c, r);
    REQUIRE(p.actions.size() == 1);
    CHECK(p.actions[0] == BalanceAction{1, std::nullopt});
    CHECK_FALSE(p.busy);

    auto low = ring(cells(16, 3.30));
    low[0].volts = 3.20;
    low[5].volts = 3.44;  // spread 0.24 but the highest cell is below min 3.45
    low[5].threshold = 3.45;
    BalancePlan q = plan_balancing(c, low);
    REQUIRE(q.actions.size() == 1);
    CHECK(q.actions[0] == BalanceAction{5, std::nullopt});
}

TEST_CASE("the exact 2d edge balances (constructed doubles)") {
    BatteryConfig c = bms_cfg();
    c.balance.d = 0.25, c.balance.min = 3.0, c.balance.r = 0;  // 0.25 and 3.5 - 3.0 are exact in binary
    auto r = ring(cells(4, 3.0));
    r[3].volts = 3.5;  // hi - lo == 2d exactly: active; start level 3.0 + 0.25 + 0.25 = 3.5
    BalancePlan p = plan_balancing(c, r);
    CHECK(p.start == 3.5);
    REQUIRE(p.actions.size() == 1);
    CHECK(p.actions[0] == BalanceAction{3, 3.0});
    r[3].volts = std::nextafter(3.5, 0.0);
    CHECK(plan_balancing(c, r).actions.empty());
}

TEST_CASE("a balancing cell below the target is raised, a finished one is cleared, PWM read while any balances") {
    BatteryConfig c = bms_cfg();
    auto r = ring(cells(16, 3.42));
    r[0].volts = 3.40;
    r[4].volts = 3.505, r[4].threshold = 3.40, r[4].in_balance = true;  // threshold below tgt 3.45
    r[6].volts = 3.46, r[6].threshold = 3.45, r[6].in_balance = false;  // cycle over
    BalancePlan p = plan_balancing(c, r);
    REQUIRE(p.actions.size() == 2);
    CHECK(p.actions[0].cell == 4);
    CHECK(*p.actions[0].threshold == Approx(3.45 + 2 * 0.05));
    CHECK(p.actions[1] == BalanceAction{6, std::nullopt});
    CHECK(p.read_pwm);
    CHECK(p.busy);
}

TEST_CASE("at most n cells at once: the limit is checked before adding") {
    BatteryConfig c = bms_cfg();  // n = 4
    auto v = cells(16, 3.42);
    v[0] = 3.40;
    for (int i = 10; i < 16; ++i) v[std::size_t(i)] = 3.52 + 0.002 * i;  // six cells above 3.509
    BalancePlan p = plan_balancing(c, ring(v));
    CHECK(count_set(p) == 4);  // 2022 allowed n + 1
    for (const auto& a : p.actions) CHECK(a.cell >= 12);  // the highest four
    c.balance.n = 0;  // any number
    CHECK(count_set(plan_balancing(c, ring(v))) == 6);
}

TEST_CASE("shedding: too many balancing cells, the lowest below the drop level is cleared first") {
    BatteryConfig c = bms_cfg();
    c.balance.n = 2;
    auto r = ring(cells(16, 3.42));
    r[0].volts = 3.40;                                                   // drop level 3.4572
    r[5].volts = 3.455, r[5].threshold = 3.45, r[5].in_balance = true;   // below drop
    r[6].volts = 3.456, r[6].threshold = 3.45, r[6].in_balance = true;   // below drop
    r[7].volts = 3.505, r[7].threshold = 3.45, r[7].in_balance = true;   // above drop: kept
    BalancePlan p = plan_balancing(c, r);
    REQUIRE(p.actions.size() == 1);
    CHECK(p.actions[0] == BalanceAction{5, std::nullopt});  // cur 3 -> 2 = n: stop
    c.balance.n = 0;  // unlimited: nothing shed
    CHECK(plan_balancing(c, r).actions.empty());
}

TEST_CASE("forced cells are never touched and count towards n") {
    BatteryConfig c = bms_cfg();
    c.balance.n = 2;
    auto v = cells(16, 3.42);
    v[0] = 3.40;
    v[14] = 3.53, v[15] = 3.54;
    auto r = ring(v);
    r[1].forced = true, r[1].threshold = 3.41;  // forced, low: not cleared, counts 1
    BalancePlan p = plan_balancing(c, r);
    REQUIRE(p.actions.size() == 1);
    CHECK(p.actions[0] == BalanceAction{15, 3.45});
}

TEST_CASE("manual balance voltage") {
    CHECK(manual_balance(0.05, 3.4)->forced == false);
    CHECK_FALSE(manual_balance(0.05, 3.4)->threshold);
    CHECK_FALSE(manual_balance(3.41, 3.40));  // above the cell: refused
    auto m = manual_balance(3.35, 3.40);
    REQUIRE(m);
    CHECK(m->forced);
    CHECK(*m->threshold == 3.35);
}
