// Each mode's loop and the settle loop (§12, §14, §18.8) in virtual time:
// run_mode() against a fake LoopIo on a VirtualClock.
#include "inverter_test_support.hpp"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "mode_loop.hpp"

using namespace moat;
using namespace moat::inverter;
using namespace moat::inverter::test;
using namespace std::chrono_literals;

namespace {

/// The outside world of a mode: fixed inputs (p_inv scripted per reading),
/// a Multi whose /Ac/ActiveIn/P changes `response` after each trigger's sleep.
struct FakeIo final : LoopIo {
    explicit FakeIo(Clock& c) : clock(c), t0(c.now()) {}

    Clock& clock;
    TimePoint t0;
    Inputs in = defaults();
    std::vector<double> p_script;  ///< p_inv of successive readings (the last repeats); empty: from `in`
    std::size_t next = 0;
    Duration response = 1s;

    struct Event {
        std::string what;  ///< "in", "write", "trigger"
        double t;          ///< s since the start
        std::vector<double> values;
    };
    std::vector<Event> events;
    std::vector<SocReport> socs;
    std::vector<RemoteReport> remotes;
    int records = 0;
    std::vector<double> readings;

    double now() const { return std::chrono::duration<double>(clock.now() - t0).count(); }

    Task<Inputs> inputs() override {
        Inputs r = in;
        if (!p_script.empty()) {
            double p = p_script[std::min(next++, p_script.size() - 1)];
            r.grid = {-p / 3, -p / 3, -p / 3};  // p_inv = -p_cons - p_grid, consumption 0
        }
        events.push_back({"in", now(), {r.p_inv()}});
        co_return r;
    }
    Task<void> write(std::vector<double> setpoints) override {
        events.push_back({"write", now(), setpoints});
        co_return;
    }
    Task<void> trigger(Duration sleep) override {
        co_await sleep_for(sleep);
        co_await sleep_for(response);
        events.push_back({"trigger", now(), {}});
    }
    void record(const Cycle&) override { ++records; }
    void reading(double p) override { readings.push_back(p); }
    void soc_report(const SocReport& r) override { socs.push_back(r); }
    void remote_report(const RemoteReport& r) override { remotes.push_back(r); }
    double solar_p() override { return 0; }
    TimePoint time_now() override { return clock.now(); }
    void analyze_report(const Value::Dict&) override {}
    void hand_over(Mode, const Op&) override {}

    std::vector<std::string> kinds() const {
        std::vector<std::string> v;
        for (auto& e : events) v.push_back(e.what);
        return v;
    }
    std::vector<Event> writes() const {
        std::vector<Event> v;
        for (auto& e : events)
            if (e.what == "write") v.push_back(e);
        return v;
    }
};

const LoopTiming timing{3s, 20s};  // the spec's trigger sleep (§12) and idle sleep (§14.2)

struct LoopRig {
    LoopRig() { loop.set_clock(clock); }
    Loop loop;
    VirtualClock clock{loop};
    FakeIo io{clock};
    Controller ctl{SystemParams{}};
    Op op;

    void run(Mode mode, Duration total) {
        run_for(loop, clock, total, [&] { return run_mode(ctl, io, timing, mode, op); });
    }
    void settle_once(const Target& t) {
        run_for(loop, clock, 1h, [&] { return apply_and_settle(ctl, io, timing, t); });
    }
};

} // namespace

TEST_CASE("settle loop: 1000, 1400, 1480, 1500 stops after 1500 with 4 triggers", "[inverter][mode_loop]") {
    LoopRig r;
    r.io.p_script = {1000, 1400, 1480, 1500};
    r.settle_once(Target::inv_p(1500));
    CHECK(r.io.kinds() == std::vector<std::string>{"in", "write", "trigger", "trigger", "in", "trigger", "in",
                                                   "trigger", "in"});
    CHECK(r.io.readings == std::vector<double>{1400, 1480, 1500});
    CHECK(r.io.events.back().t == Approx(16));  // 4 triggers of 3 s sleep + 1 s response
    CHECK(r.ctl.running);
}

TEST_CASE("settle loop: rising by 200 per reading stops after 10 readings, 11 triggers", "[inverter][mode_loop]") {
    LoopRig r;
    r.io.p_script = {0, 200, 400, 600, 800, 1000, 1200, 1400, 1600, 1800, 2000, 2200, 2400};
    r.settle_once(Target::inv_p(3000));
    auto k = r.io.kinds();
    CHECK(std::count(k.begin(), k.end(), "trigger") == 11);
    CHECK(std::count(k.begin(), k.end(), "in") == 11);
    CHECK(std::count(k.begin(), k.end(), "write") == 1);
    CHECK(r.io.readings.size() == 10);
    CHECK(r.io.readings.back() == 2000);
    CHECK(r.io.events.back().t == Approx(44));
}

TEST_CASE("p_inv: no output before the first trigger, then S1 every settled round", "[inverter][mode_loop]") {
    LoopRig r;
    r.op = {{"power", 1000.0}};
    r.io.p_script = {0};  // the readings never move: each round settles after two readings
    r.run(Mode::p_inv, 39s);
    auto k = r.io.kinds();
    REQUIRE(k.size() >= 4);
    // §18.8: reading, trigger, then the first cycle's reading and write
    CHECK(std::vector<std::string>(k.begin(), k.begin() + 4) == std::vector<std::string>{"in", "trigger", "in", "write"});
    auto w = r.io.writes();
    REQUIRE(w.size() == 3);
    for (std::size_t i = 0; i < w.size(); ++i) {
        CHECK(w[i].t == Approx(4 + 12.0 * static_cast<double>(i)));  // 1 trigger, then 3 per round
        CHECK_THAT(w[i].values, approx(all3(-333.33)));
    }
}

TEST_CASE("p_grid: S2, consumption 800/300/100 at grid 0", "[inverter][mode_loop]") {
    LoopRig r;
    r.op = {{"power", 0.0}};
    r.io.in.consumption = {800, 300, 100};
    r.io.in.grid = {800, 300, 100};
    r.run(Mode::p_grid, 30s);
    auto w = r.io.writes();
    REQUIRE(w.size() == 3);
    CHECK(w[0].t == Approx(4));
    for (auto& e : w) CHECK_THAT(e.values, approx({-800, -300, -100}));
}

TEST_CASE("i_batt: S14, PV 30 A, charge 10 A", "[inverter][mode_loop]") {
    LoopRig r;
    r.op = {{"current", -10.0}};
    r.io.in.pv_current = 30;
    r.ctl.pv.set_max(30);
    r.run(Mode::i_batt, 20s);
    auto w = r.io.writes();
    REQUIRE(w.size() == 2);
    for (auto& e : w) CHECK_THAT(e.values, approx(all3(-312)));
}

TEST_CASE("idle writes at once and then every idle sleep plus trigger", "[inverter][mode_loop]") {
    LoopRig r;
    r.op = {{"power", 900.0}};
    r.run(Mode::idle, 50s);
    auto w = r.io.writes();
    REQUIRE(w.size() == 3);  // 0, 21, 42
    for (std::size_t i = 0; i < w.size(); ++i) {
        CHECK(w[i].t == Approx(21.0 * static_cast<double>(i)));
        CHECK_THAT(w[i].values, approx(all3(-300)));
    }
}

TEST_CASE("off writes its power once, at once, and then nothing", "[inverter][mode_loop]") {
    LoopRig r;
    r.op = {{"power", 0.0}};
    r.run(Mode::off, 60s);
    auto w = r.io.writes();
    REQUIRE(w.size() == 1);
    CHECK(w[0].t == Approx(0));
    CHECK_THAT(w[0].values, approx(all3(0)));
}

TEST_CASE("soc below its target: both steps of a round charge at power_in", "[inverter][mode_loop]") {
    LoopRig r;
    r.op = {{"dest_soc", 0.8}, {"power_in", -100.0}, {"power_out", 0.0}};
    r.io.in.consumption = {300, 300, 300};
    r.io.in.grid = {300, 300, 300};
    r.run(Mode::soc, 40s);
    // 4 s (§18.8), a settled step 12 s, a reading, a settled step 12 s, a trigger 4 s: rounds of 28 s
    auto w = r.io.writes();
    REQUIRE(w.size() == 3);
    CHECK(w[0].t == Approx(4));
    CHECK(w[1].t == Approx(16));
    CHECK(w[2].t == Approx(32));
    for (auto& e : w) CHECK_THAT(e.values, approx(all3(-1000.0 / 3)));
    REQUIRE(r.io.socs.size() == 1);
    CHECK(r.io.socs[0].now == near(0.5));
    CHECK(r.io.socs[0].delta == near(0.3));
    CHECK(r.io.socs[0].power == -100.0);
}

TEST_CASE("soc within 0.02 of its target: power_in first [QUIRK], then the battery held at 0 A",
          "[inverter][mode_loop]") {
    LoopRig r;
    r.op = {{"dest_soc", 0.8}, {"power_in", -100.0}, {"power_out", 0.0}};
    r.io.in.soc_percent = 79;
    r.io.in.consumption = {300, 300, 300};
    r.io.in.grid = {300, 300, 300};
    r.run(Mode::soc, 40s);
    auto w = r.io.writes();
    REQUIRE(w.size() == 3);
    CHECK_THAT(w[0].values, approx(all3(-1000.0 / 3)));
    CHECK_THAT(w[1].values, approx(all3(0)));
    CHECK_THAT(w[2].values, approx(all3(-1000.0 / 3)));
    REQUIRE(r.io.socs.size() == 1);
    CHECK(r.io.socs[0].delta == 0);
    CHECK_FALSE(r.io.socs[0].power.has_value());
}

TEST_CASE("remote: state 0 exports power capped by power_ref, every settled round", "[inverter][mode_loop]") {
    LoopRig r;
    r.op = {{"power", 1000.0}, {"power_ref", 1500.0}};
    r.io.in.consumption = {300, 300, 300};
    r.io.in.grid = {300, 300, 300};
    r.run(Mode::remote, 30s);
    auto w = r.io.writes();
    REQUIRE(w.size() == 3);
    for (auto& e : w) CHECK_THAT(e.values, approx(all3(-633.33)));
    REQUIRE(r.io.remotes.size() == 3);
    CHECK(r.io.remotes[0].mode == 0);
    CHECK(r.op.at("mode") == 0.0);
}

TEST_CASE("a parameter changed while the mode runs applies from the next round", "[inverter][mode_loop]") {
    LoopRig r;
    r.op = {{"power", 600.0}};
    Duration total = 30s;
    auto change = [&]() -> Task<void> {
        co_await sleep_for(10s);
        r.op["power"] = 1200.0;
    };
    run_for(r.loop, r.clock, total, [&]() -> Task<void> {
        auto both = [&](TaskGroup& g) -> Task<void> {
            g.spawn(change(), "change");
            co_await run_mode(r.ctl, r.io, timing, Mode::p_inv, r.op);
        };
        co_await with_group(both);
    });
    auto w = r.io.writes();
    REQUIRE(w.size() == 3);  // 4, 16, 28
    CHECK_THAT(w[0].values, approx(all3(-200)));
    CHECK_THAT(w[1].values, approx(all3(-400)));
    CHECK_THAT(w[2].values, approx(all3(-400)));
}
