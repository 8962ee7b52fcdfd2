#include <catch2/catch.hpp>

#include <cmath>
#include <functional>

#include "clocked.hpp"
#include "model.hpp"

using namespace moat::sim;

namespace {

SystemConfig night() {
    SystemConfig c;
    c.start_hour = 0;  // no sun
    c.load.noise_w = 0;
    return c;
}

void check_balance(const System& s) {
    REQUIRE(s.battery.current() == Approx(s.pv_current() + s.multi_dc_current()).margin(1e-9));
    for (int n = 0; n < s.phases(); ++n) REQUIRE(s.grid(n) == Approx(s.load.power()[n] + s.multi.ac_in(n)).margin(1e-9));
}

} // namespace

TEST_CASE("the daily curve is 0 at night, peaks at midday and the speed-up moves the sun", "[sim][model]") {
    DailyCurve c{.peak_w = 4000, .sunrise_h = 6, .sunset_h = 20};
    CHECK(c.power(3) == 0);
    CHECK(c.power(6) == 0);
    CHECK(c.power(21) == 0);
    CHECK(c.power(13) == Approx(4000));
    CHECK(c.power(9) == Approx(c.power(17)));
    CHECK(c.power(9) < c.power(12));
    CHECK(time_of_day(12, 1, 3600) == Approx(13));
    CHECK(time_of_day(12, 60, 60) == Approx(13));      // a minute is an hour
    CHECK(time_of_day(23, 1, 7200) == Approx(1));      // wraps at midnight
}

TEST_CASE("the household load is repeatable for a seed and noisy around its profile", "[sim][model]") {
    LoadConfig c;
    c.base_w = {500, 200};
    c.noise_w = 50;
    c.seed = 42;
    Load a(c, 2), b(c, 2);
    c.seed = 43;
    Load other(c, 2);
    double sum = 0, sq = 0, diff = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) {
        auto pa = a.step(1.0, 12), pb = b.step(1.0, 12);
        diff += std::abs(other.step(1.0, 12)[0] - pa[0]);
        REQUIRE(pa == pb);
        sum += pa[0];
        sq += (pa[0] - 500) * (pa[0] - 500);
    }
    CHECK(sum / n == Approx(500).margin(5));
    CHECK(std::sqrt(sq / n) == Approx(50).margin(5));
    CHECK(diff > 0);
    LoadConfig profiled;
    profiled.base_w = {1000};
    profiled.noise_w = 0;
    profiled.profile = std::vector<double>(24, 1.0);
    profiled.profile[18] = 2.0;
    Load p(profiled, 1);
    CHECK(p.step(1, 18)[0] == Approx(2000));
    CHECK(p.step(1, 17.5)[0] == Approx(1500));  // linear between the hours
    CHECK(p.step(1, 3)[0] == Approx(1000));
}

TEST_CASE("the battery integrates its SoC, and its voltage is OCV plus I times R", "[sim][model]") {
    BatteryConfig c;
    c.capacity_ah = 200;
    c.soc = 50;
    c.r_internal = 0.02;
    Battery b(c);
    const double ocv50 = ocv(c.ocv, 50);
    CHECK(ocv50 == Approx((c.ocv[5])));
    CHECK(ocv(c.ocv, 55) == Approx((c.ocv[5] + c.ocv[6]) / 2));
    for (int i = 0; i < 3600; ++i) b.step(20.0, 1.0);  // 20 A for an hour = 20 Ah = 10 %
    CHECK(b.soc() == Approx(60));
    CHECK(b.voltage() == Approx(ocv(c.ocv, 60) + 20 * 0.02));
    for (int i = 0; i < 36; ++i) b.step(-100.0, 100.0);  // 100 Ah out
    CHECK(b.soc() == Approx(10));
    CHECK(b.voltage() < ocv(c.ocv, 10));
}

TEST_CASE("the battery stores charge_efficiency of what goes in and gives all it has", "[sim][model]") {
    BatteryConfig c;
    c.capacity_ah = 100;
    c.soc = 50;
    c.charge_efficiency = 0.9;
    Battery b(c);
    b.step(10.0, 3600);  // 10 Ah in, 9 Ah stored
    CHECK(b.soc() == Approx(59));
    b.step(-9.0, 3600);  // 9 Ah out
    CHECK(b.soc() == Approx(50));
}

TEST_CASE("the BMS disallows charge when full and discharge when empty, with hysteresis", "[sim][model]") {
    BatteryConfig c;
    c.capacity_ah = 100;
    c.soc = 99;
    Battery b(c);
    CHECK(b.allow_charge());
    b.step(100, 40);  // +1.1 % → full
    CHECK(b.soc() == 100);
    CHECK_FALSE(b.allow_charge());
    CHECK(b.charge_current_limit() == 0);
    CHECK(b.max_charge_now(c.max_charge_voltage) == 0);
    b.step(-10, 360);  // 99 %: still no charge (recharge below 97)
    CHECK_FALSE(b.allow_charge());
    b.step(-10, 1080);  // 96 %
    CHECK(b.allow_charge());
    b.set_soc(6);
    CHECK(b.allow_discharge());
    b.step(-10, 360);  // 5 %
    CHECK_FALSE(b.allow_discharge());
    CHECK(b.discharge_current_limit() == 0);
    b.step(10, 720);  // 7 %: not yet (rearm above 8)
    CHECK_FALSE(b.allow_discharge());
    b.step(10, 720);  // 9 %
    CHECK(b.allow_discharge());
    b.force_allow_discharge(false);
    CHECK_FALSE(b.allow_discharge());
    b.force_allow_discharge(std::nullopt);
    CHECK(b.allow_discharge());
}

TEST_CASE("the Multi follows its setpoint with a first-order response", "[sim][model]") {
    MultiConfig c;
    c.tau_s = 2.0;
    c.efficiency = 1.0;
    Multi m(c);
    MultiLimits lim;
    m.write_setpoint(0, -1000, 0);
    double t = 0;
    for (int i = 0; i < 200; ++i) m.step(0.01, t += 0.01, 50, lim);  // one tau
    CHECK(m.ac_in(0) == Approx(-1000 * (1 - std::exp(-1.0))).epsilon(1e-3));
    for (int i = 0; i < 800; ++i) m.step(0.01, t += 0.01, 50, lim);  // five tau
    CHECK(m.ac_in(0) == Approx(-1000).epsilon(0.01));
    CHECK(m.dc_current(50) == Approx(-20).epsilon(0.01));
    m.write_setpoint(0, 9000, t);  // above the rating
    for (int i = 0; i < 50; ++i) m.step(1, t += 1, 50, lim);
    CHECK(m.ac_in(0) == Approx(c.rating_w));
}

TEST_CASE("the Multi falls back to 0 W when the setpoint is not rewritten in time", "[sim][model]") {
    MultiConfig c;
    c.timeout_s = 10;
    c.tau_s = 1;
    Multi m(c);
    MultiLimits lim;
    CHECK(m.fallen_back(0));  // nothing written yet
    double t = 0;
    for (int i = 0; i < 30; ++i) {
        if (i % 5 == 0) m.write_setpoint(0, 800, t);  // rewritten every 5 s: kept
        m.step(1, t += 1, 50, lim);
    }
    CHECK_FALSE(m.fallen_back(t));
    CHECK(m.ac_in(0) == Approx(800).epsilon(0.01));
    for (int i = 0; i < 5; ++i) m.step(1, t += 1, 50, lim);  // 10 s after the last write: still held
    CHECK_FALSE(m.fallen_back(t));
    CHECK(m.ac_in(0) == Approx(800).epsilon(0.01));
    m.step(1, t += 1, 50, lim);
    CHECK(m.fallen_back(t));
    CHECK(m.ac_in(0) < 800 * 0.4);  // one tau towards 0
    for (int i = 0; i < 20; ++i) m.step(1, t += 1, 50, lim);
    CHECK(std::abs(m.ac_in(0)) < 1);
    CHECK(m.setpoint(0) == 800);  // the written value stays readable, as on a real Multi
}

TEST_CASE("battery allow flags stop inverting and charging, and PV stops with charging", "[sim][model]") {
    auto c = night();
    c.multi.phases = 3;
    System s(c);
    for (int n = 0; n < 3; ++n) s.multi.write_setpoint(n, -1000, s.now());
    s.advance(20);
    CHECK(s.multi.ac_in_total() == Approx(-3000).epsilon(0.01));
    CHECK(s.battery.current() < 0);
    s.battery.force_allow_discharge(false);
    for (int n = 0; n < 3; ++n) s.multi.write_setpoint(n, -1000, s.now());
    s.advance(20);
    CHECK(std::abs(s.multi.ac_in_total()) < 1);
    CHECK(s.battery.current() > -0.1);
    check_balance(s);

    s.battery.force_allow_discharge(std::nullopt);
    s.battery.force_allow_charge(false);
    for (int n = 0; n < 3; ++n) s.multi.write_setpoint(n, 1000, s.now());
    s.advance(20);
    CHECK(std::abs(s.multi.ac_in_total()) < 1);
    CHECK(s.battery.current() < 0.1);

    auto day = c;
    day.start_hour = 13;
    System sunny(day);
    sunny.advance(5);
    CHECK(sunny.pv_current() > 10);
    sunny.battery.force_allow_charge(false);
    sunny.advance(5);
    CHECK(sunny.pv_current() == Approx(0).margin(1e-9));  // nowhere to go: curtailed
    check_balance(sunny);
}

TEST_CASE("a battery cut off by its BMS relay takes no current and the Multi and PV stop", "[sim][model]") {
    auto day = night();
    day.start_hour = 13;
    System s(day);
    s.multi.write_setpoint(0, -1000, s.now());
    s.advance(20);
    CHECK(s.battery.current() != Approx(0).margin(1));
    const double soc = s.battery.soc();
    s.battery.set_cut_off(true);
    CHECK_FALSE(s.battery.allow_charge());
    CHECK_FALSE(s.battery.allow_discharge());
    s.multi.write_setpoint(0, -1000, s.now());
    s.advance(20);
    CHECK(s.battery.current() == 0);
    CHECK(std::abs(s.multi.ac_in_total()) < 1);
    CHECK(s.pv_current() + s.multi_dc_current() == Approx(0).margin(1));
    CHECK(s.battery.soc() == soc);  // nothing flowed while cut off
    s.battery.set_cut_off(false);
    CHECK(s.battery.allow_discharge());
    s.multi.write_setpoint(0, -1000, s.now());
    s.advance(20);
    CHECK(s.battery.current() != Approx(0).margin(1));
    check_balance(s);
}

TEST_CASE("Hub4 flags, mode and the DVCC link limit the Multi and the chargers", "[sim][model]") {
    auto c = night();
    System s(c);
    s.multi.disable_feed_in = true;
    s.multi.write_setpoint(0, -3000, s.now());
    s.advance(20);
    CHECK(s.grid(0) == Approx(0).margin(1));  // inverts only for the house
    s.multi.disable_feed_in = false;
    s.multi.disable_charge = true;
    s.multi.write_setpoint(0, 2000, s.now());
    s.advance(20);
    CHECK(std::abs(s.multi.ac_in(0)) < 1);
    s.multi.disable_charge = false;
    s.multi.mode = 4;
    s.advance(20);
    CHECK(std::abs(s.multi.ac_in(0)) < 1);

    auto day = night();
    day.start_hour = 13;
    System sun(day);
    sun.solar[0].link_current = 10;
    sun.advance(5);
    CHECK(sun.pv_current() == Approx(10));
    sun.solar[0].link_current.reset();
    sun.advance(5);
    CHECK(sun.pv_current() > 40);
    // The battery's CCL caps the sum of Multi and PV.
    sun.multi.write_setpoint(0, 3000, sun.now());
    sun.advance(20);
    CHECK(sun.battery.current() == Approx(c.battery.max_charge_current).epsilon(0.01));
    check_balance(sun);
}

TEST_CASE("an hour of simulated time on a virtual clock keeps both balances", "[sim][model]") {
    moat::Loop loop;
    moat::VirtualClock clock(loop);
    loop.set_clock(clock);
    SystemConfig c;
    c.multi.phases = 3;
    c.start_hour = 10;
    c.speedup = 4;  // four hours of sun
    System s(c);
    const double soc0 = s.battery.soc();
    int steps = 0;
    double ah = 0, last_t = 0;
    std::function<moat::Task<void>()> check = [&]() -> moat::Task<void> {
        ++steps;
        check_balance(s);
        ah += s.battery.current() * (s.now() - last_t) / 3600;
        last_t = s.now();
        if (steps % 10 == 0)  // a controller writing a new setpoint every 10 s
            for (int n = 0; n < 3; ++n) s.multi.write_setpoint(n, 1500 * std::sin(steps / 100.0 + n), s.now());
        co_return;
    };
    auto task = [&]() -> moat::Task<void> {
        auto run = run_clocked(loop, s, std::chrono::seconds(1), check);
        auto bounded = moat::with_timeout(std::chrono::hours(1), std::move(run));
        co_await bounded;
    };
    auto driver = [&]() -> moat::Task<void> {
        try {
            co_await task();
        } catch (const moat::TimeoutError&) {
        }
    };
    bool done = false;
    auto outer = [&]() -> moat::Task<void> {
        auto t = driver();
        co_await t;
        done = true;
    };
    auto advance = [&]() -> moat::Task<void> {
        for (int i = 0; i < 3700 && !done; ++i) {
            clock.advance(std::chrono::seconds(1));
            co_await moat::checkpoint();
        }
    };
    auto both = [&](moat::TaskGroup& g) -> moat::Task<void> {
        g.spawn(outer(), "sim");
        g.spawn(advance(), "clock");
        co_return;
    };
    moat::run_until_complete(loop, moat::with_group(both));
    CHECK(done);
    CHECK(steps >= 3599);
    CHECK(s.now() == Approx(3600).margin(1.5));
    CHECK(s.hour() == Approx(14).margin(0.01));
    // The SoC moved by exactly the integrated battery current (within a step).
    CHECK(s.battery.soc() - soc0 == Approx(ah / c.battery.capacity_ah * 100).margin(0.05));
}

TEST_CASE("the Multi follows its setpoints only in Hub4Mode 3", "[sim][model]") {
    MultiConfig c;
    c.tau_s = 0.1;
    Multi m(c);
    MultiLimits lim;
    double t = 0;
    m.write_setpoint(0, -1000, t);
    for (int i = 0; i < 100; ++i) m.step(0.01, t += 0.01, 50, lim);
    CHECK(m.ac_in(0) == Approx(-1000).epsilon(0.01));
    m.hub4_mode = 1;  // optimised: setpoints are ignored
    m.write_setpoint(0, -1500, t);
    CHECK(m.target(0, t, lim) == 0.0);
    for (int i = 0; i < 200; ++i) m.step(0.01, t += 0.01, 50, lim);
    CHECK(std::abs(m.ac_in(0)) < 1.0);
    m.hub4_mode = 3;
    m.write_setpoint(0, -1500, t);
    CHECK(m.target(0, t, lim) == -1500.0);
}

TEST_CASE("the load is there from the start, before the first step", "[sim][model]") {
    SystemConfig c;
    c.load.base_w = {400, 300, 300};
    c.load.noise_w = 30;
    System s(c);
    CHECK(s.grid(0) == Approx(400));  // no noise drawn yet, the Multi at 0 W
}

namespace {

/// A night (no PV) with the Multi told to charge with 3000 W, advanced by `seconds`.
System charging(double seconds, const std::function<void(System&)>& limits) {
    SystemConfig c = night();
    c.solar.clear();
    c.multi.tau_s = 0.1;
    System s(c);
    limits(s);
    s.multi.write_setpoint(0, 3000, s.now());
    s.advance(seconds);
    return s;
}

} // namespace

TEST_CASE("the Multi honours DVCC's limits like a Multi", "[sim][model]") {
    // Unlimited: 3000 W · 0.95 at ~52 V is far above 20 A.
    auto free = charging(5, [](System&) {});
    CHECK(free.battery.current() > 40);
    // MaxChargeCurrent: the battery current (no PV) is the limit.
    auto ccl = charging(5, [](System& s) { s.multi.dvcc.max_charge_current.write(20.0); });
    CHECK(ccl.battery.current() == Approx(20).margin(0.01));
    check_balance(ccl);
    // /Dc/0/MaxChargeCurrent limits the same way; the lower of both holds.
    auto dc = charging(5, [](System& s) {
        s.multi.dc_max_charge_current = 8;
        s.multi.dvcc.max_charge_current.write(20.0);
    });
    CHECK(dc.battery.current() == Approx(8).margin(0.01));
    // Written invalid: no DVCC limit.
    auto none = charging(5, [](System& s) { s.multi.dvcc.max_charge_current.write(std::nullopt); });
    CHECK(none.battery.current() == Approx(free.battery.current()));
    // MaxChargeVoltage: constant voltage at the written value, below the BMS's.
    auto cvl = charging(5, [](System& s) {
        s.multi.dvcc.max_charge_voltage.write(s.battery.open_circuit_voltage() + 0.05);
    });
    CHECK(cvl.battery.current() == Approx(5).margin(0.5));  // (0.05 V) / 0.01 ohm
    CHECK(cvl.battery.voltage() == Approx(cvl.charge_voltage()).margin(0.001));
}

TEST_CASE("DVCC's discharge limit and low voltage stop the Multi inverting", "[sim][model]") {
    auto inverting = [](const std::function<void(System&)>& limits) {
        SystemConfig c = night();
        c.solar.clear();
        c.multi.tau_s = 0.1;
        System s(c);
        limits(s);
        s.multi.write_setpoint(0, -3000, s.now());
        s.advance(5);
        return s;
    };
    CHECK(inverting([](System&) {}).battery.current() < -40);
    auto dcl = inverting([](System& s) { s.multi.dvcc.max_discharge_current.write(15.0); });
    CHECK(dcl.battery.current() == Approx(-15).margin(0.01));
    auto low = inverting([](System& s) { s.multi.dvcc.battery_low_voltage.write(60.0); });
    CHECK(std::abs(low.battery.current()) < 0.5);
}
