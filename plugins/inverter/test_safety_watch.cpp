// The safety watch (§18.3-§18.6) in virtual time, driving the real mode
// supervisor with a fake I/O: each rule with its deadline.
#include "inverter_test_support.hpp"

#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <moat/log.hpp>

#include "safety_watch.hpp"
#include "supervisor_test_support.hpp"

using namespace moat;
using namespace moat::inverter;
using namespace moat::inverter::test;
using namespace std::chrono_literals;

namespace {

constexpr const char* vebus_name = "com.victronenergy.vebus.ttyS4";
constexpr const char* battery_name = "com.victronenergy.battery.ttyO1";
constexpr const char* system_name = "com.victronenergy.system";

struct CaptureSink final : LogSink {
    CaptureSink() { level = LogLevel::debug; }
    std::vector<std::string> lines;
    void write(LogLevel, std::string_view line) override { lines.emplace_back(line); }
    bool has(const std::string& part) const {
        for (auto& l : lines)
            if (l.find(part) != std::string::npos) return true;
        return false;
    }
};

/// Every input there, fresh, plausible; ESS mode 3 with the assistant.
SafetyReading healthy() {
    SafetyReading r;
    r.vebus = vebus_name;
    r.battery = battery_name;
    r.guard.vebus_present = r.guard.system_present = r.guard.battery_present = true;
    r.guard.vebus_name = vebus_name;
    r.guard.hub4_mode = 3;
    r.guard.assistant_id = 5;
    r.inputs = defaults();
    r.overvoltage_feed_in = 0;
    r.may_be_inverting = false;
    return r;
}

struct WatchRig {
    explicit WatchRig(Mode start = Mode::p_grid, SafetyTiming timing = {1s, 5s}) : timing(timing), start(start) {
        loop.set_clock(clock);
        sp.safe_power = 100;  // Victron sign -100 W: would discharge the battery
    }
    SafetyTiming timing;
    Mode start;
    Loop loop;
    VirtualClock clock{loop};
    FakeSupervisorIo io{clock};
    SystemParams sp;
    std::shared_ptr<CaptureSink> log = std::make_shared<CaptureSink>();
    ModeSupervisor sup{io, clock, Logger("inverter", null_sink()), 0s, start, {}};
    SafetyWatch watch{sup, clock, Logger("inverter", log), timing, sp};
    /// What the next pass reads; the script changes it.
    SafetyReading reading = healthy();
    /// The services that send updates (every 100 ms); the script silences one by erasing it.
    std::set<std::string> publishing{system_name, vebus_name, battery_name};
    std::vector<std::string> events;

    /// Supervisor, watch, the publishing services and `script`, at most
    /// `total` of virtual time; `events` are the fake's events until the script ends.
    void run(Duration total, std::function<Task<void>()> script) {
        run_for(loop, clock, total, [&]() -> Task<void> {
            auto body = [&](TaskGroup& g) -> Task<void> {
                watch.start();
                g.spawn(sup.run(), "supervisor");
                g.spawn(watch.run([this] { return reading; }), "watch");
                g.spawn(publish(), "services");
                auto s = script();
                co_await s;
                events = io.events;
                g.cancel();
            };
            co_await with_group(body);
        });
    }
    Task<void> publish() {
        for (;;) {
            for (auto& s : publishing) watch.updated(s);
            co_await sleep_for(100ms);
        }
    }
    Task<void> at(double t) {
        auto until = io.t0 + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(t));
        co_await sleep_for(until - clock.now());
    }
    /// The virtual time of the first event that starts with `what` (after `after` s), or -1.
    double when(const std::string& what, double after = -1) const {
        for (auto& e : events) {
            double t = std::stod(e);
            if (t > after && e.substr(e.find(' ') + 1).starts_with(what)) return t;
        }
        return -1;
    }
    int count(const std::string& what) const {
        int n = 0;
        for (auto& e : events)
            if (e.substr(e.find(' ') + 1).starts_with(what)) ++n;
        return n;
    }
};

std::vector<std::string> strings(std::initializer_list<const char*> l) { return {l.begin(), l.end()}; }

} // namespace

TEST_CASE("safety: a silent battery service stops the mode with the safe setpoints within the input timeout",
          "[inverter][safety]") {
    WatchRig r;
    r.run(8s, [&]() -> Task<void> {
        co_await r.at(2.0);
        r.publishing.erase(battery_name);  // its last update: 2.0 s at the latest
        co_await r.at(4.0);
        CHECK_FALSE(r.sup.inputs_ok());
        CHECK(r.watch.input_problem().starts_with("no update from the battery service for "));
        r.publishing.insert(battery_name);
        co_await r.at(5.0);
    });
    CHECK(r.when("start p_grid") == 0.0);
    // Not before the timeout (1 s after the last update at 1.9..2.0 s), and
    // within it plus one pass of the watch (100 ms) plus the clock's step.
    double stop = r.when("stop p_grid");
    CHECK(stop > 2.9);
    CHECK(stop <= 3.2);
    CHECK(r.when("safe input lost") == stop);
    // back with its first update
    double back = r.when("start p_grid", stop);
    CHECK(back >= 4.0);
    CHECK(back <= 4.2);
    CHECK(r.log->has("input lost, stopping the control loop: no update from the battery service for 1."));
    CHECK(r.log->has("inputs are back; resuming mode p_grid"));
}

TEST_CASE("safety: invalid inputs hold the last setpoints for the input timeout, then stop the mode",
          "[inverter][safety]") {
    WatchRig r;
    r.run(6s, [&]() -> Task<void> {
        co_await r.at(2.0);
        r.reading.guard.problems = {"battery voltage invalid"};
        co_await r.at(2.9);
        CHECK(r.sup.inputs_ok());  // holding
        CHECK(r.watch.input_problem() == "inputs invalid: battery voltage invalid");
        co_await r.at(4.0);
        CHECK(r.watch.input_problem().starts_with("inputs invalid for "));
    });
    double stop = r.when("stop p_grid");
    CHECK(stop > 3.0);
    CHECK(stop <= 3.2);
    CHECK(r.when("safe input lost") == stop);
}

TEST_CASE("safety: a vanished vebus service stops the mode at the next pass", "[inverter][safety]") {
    WatchRig r;
    r.run(4s, [&]() -> Task<void> {
        co_await r.at(2.0);
        r.reading.guard.vebus_present = false;
        co_await r.at(3.0);
        CHECK(r.watch.input_problem() == "the vebus service is not on the bus");
        CHECK_FALSE(r.watch.may_write());
    });
    double stop = r.when("stop p_grid");
    CHECK(stop >= 2.0);
    CHECK(stop <= 2.2);
}

TEST_CASE("safety: Hub4Mode not 3 forbids every write at once, the mode keeps computing", "[inverter][safety]") {
    WatchRig r;
    r.run(6s, [&]() -> Task<void> {
        co_await r.at(1.0);
        CHECK(r.watch.may_write());
        r.reading.guard.hub4_mode = 1;
        // a write right now asks decide(): refused without waiting for a pass
        auto d = r.watch.decide(r.reading);
        CHECK_FALSE(d.may_write);
        CHECK(d.write_problem == "ESS mode (Hub4Mode) is 1, not 3");
        co_await r.at(1.2);
        CHECK_FALSE(r.watch.may_write());
        CHECK(r.watch.write_problem() == "ESS mode (Hub4Mode) is 1, not 3");
        r.reading.guard.hub4_mode.reset();
        CHECK(r.watch.decide(r.reading).write_problem == "ESS mode (Hub4Mode) is unknown");
        r.reading.guard.hub4_mode = 3;
        co_await r.at(2.0);
        CHECK(r.watch.may_write());
    });
    CHECK(r.events == strings({"0.0 start p_grid"}));  // writes are gated, the loop is not stopped
    CHECK(r.log->has("WARNING [inverter] not writing to the Multi: ESS mode (Hub4Mode) is 1, not 3"));
    CHECK(r.log->has("INFO [inverter] writing to the Multi is allowed"));
}

TEST_CASE("safety: a write problem at start is expected (info) for the input timeout, then a warning",
          "[inverter][safety]") {
    WatchRig r;
    r.reading.guard.hub4_mode.reset();  // the settings service comes late
    r.run(3s, [&]() -> Task<void> {
        co_await r.at(0.5);
        CHECK(r.log->has("INFO [inverter] not writing to the Multi yet: ESS mode (Hub4Mode) is unknown"));
        CHECK_FALSE(r.log->has("WARNING"));
        co_await r.at(1.5);
        CHECK(r.log->has("WARNING [inverter] not writing to the Multi: ESS mode (Hub4Mode) is unknown"));
    });
}

TEST_CASE("safety: OvervoltageFeedIn 1 ends a closed-loop mode once (safe setpoints, off at 0 W)",
          "[inverter][safety]") {
    WatchRig r;
    r.run(10s, [&]() -> Task<void> {
        co_await r.at(2.0);
        r.reading.overvoltage_feed_in = 1;
        co_await r.at(9.0);
        CHECK(r.sup.mode() == Mode::off);
        CHECK(r.sup.error().starts_with("mode p_grid refused: refusing mode p_grid: "
                                        "/Settings/CGwacs/OvervoltageFeedIn is 1"));
    });
    double stop = r.when("stop p_grid");
    CHECK(stop >= 2.0);
    CHECK(stop <= 2.2);
    CHECK(r.when("safe mode p_grid refused") == stop);
    CHECK(r.when("start off") == stop);
    CHECK(r.count("safe") == 1);  // once, not at every pass while the setting stays 1
}

TEST_CASE("safety: OvervoltageFeedIn 1 leaves off and idle alone", "[inverter][safety]") {
    WatchRig r(Mode::idle);
    r.reading.overvoltage_feed_in = 1;
    r.run(5s, [&]() -> Task<void> { co_await r.at(4.0); });
    CHECK(r.events == strings({"0.0 start idle"}));
}

TEST_CASE("critical settings: judged in one function", "[inverter][safety]") {
    auto ok = check_critical_settings({3.0, 0.0});
    CHECK(ok.write_problem.empty());
    CHECK(ok.closed_loop_problem.empty());
    CHECK(ok.wrong.empty());
    auto bad = check_critical_settings({2.0, 1.0});
    CHECK(bad.write_problem == "ESS mode (Hub4Mode) is 2, not 3");
    CHECK(bad.closed_loop_problem.starts_with("/Settings/CGwacs/OvervoltageFeedIn is 1"));
    CHECK(bad.wrong == std::map<std::string, double>{{"/Settings/CGwacs/OvervoltageFeedIn", 1.0}});
    CHECK(check_critical_settings({std::nullopt, std::nullopt}).write_problem == "ESS mode (Hub4Mode) is unknown");
    CHECK(check_critical_settings({std::nullopt, std::nullopt}).closed_loop_problem.empty());
}

TEST_CASE("safety: a low battery restarts an inverting mode at once, safe setpoints first and clamped",
          "[inverter][safety]") {
    WatchRig r(Mode::p_inv);
    r.reading.may_be_inverting = true;
    r.run(6s, [&]() -> Task<void> {
        co_await r.at(1.0);
        CHECK(r.watch.safe_setpoints(3) == std::vector<double>{-100.0, -100.0, -100.0});
        r.reading.inputs->allow_to_discharge = false;
        co_await r.at(2.0);
        CHECK(r.watch.low_battery() == std::optional<std::string>("the BMS does not allow discharging"));
        // the safe setpoints never discharge a low battery
        CHECK(r.watch.safe_setpoints(3) == std::vector<double>{0.0, 0.0, 0.0});
    });
    double stop = r.when("stop p_inv");
    CHECK(stop >= 1.0);
    CHECK(stop <= 1.2);
    const std::string t = fmt::format("{:.1f} ", stop);
    CHECK(r.events == std::vector<std::string>{"0.0 start p_inv", t + "stop p_inv", t + "safe battery low",
                                               t + "start p_inv"});
    CHECK(r.log->has("battery low (the BMS does not allow discharging): the inverter may not discharge it; "
                     "restarting the mode with the clamp"));
}

TEST_CASE("safety: a battery counts as recovered only after low_battery_hold without a low reading",
          "[inverter][safety]") {
    WatchRig r(Mode::off);  // off restarts on recovery (a closed-loop mode recomputes anyway)
    r.run(20s, [&]() -> Task<void> {
        co_await r.at(1.0);
        r.reading.inputs->allow_to_discharge = false;
        co_await r.at(2.0);
        r.reading.inputs->allow_to_discharge = true;  // fine for 3 s (the hold is 5 s) ...
        co_await r.at(5.0);
        r.reading.inputs->allow_to_discharge = false;  // ... then low again: the hold starts over
        co_await r.at(5.5);
        r.reading.inputs->allow_to_discharge = true;
        co_await r.at(10.0);
        CHECK(r.watch.low_battery().has_value());  // 4.5 s fine: not yet
        co_await r.at(11.0);
        CHECK_FALSE(r.watch.low_battery().has_value());
        co_await r.at(12.0);
    });
    // off does not invert: no restart when the battery becomes low, one when it recovered
    CHECK(r.count("safe") == 0);
    double restart = r.when("start off", 0.0);
    CHECK(restart > 10.4);
    CHECK(restart <= 10.7);
    CHECK(r.count("start off") == 2);
    CHECK(r.log->has("the battery is no longer low (for 5 s)"));
}

TEST_CASE("safety: during analyze's capacity test the SoC cutoff does not count, the BMS's limits do",
          "[inverter][safety]") {
    WatchRig r(Mode::analyze);
    r.reading.may_be_inverting = true;
    r.reading.capacity_test = true;
    r.run(6s, [&]() -> Task<void> {
        co_await r.at(1.0);
        r.reading.inputs->soc_percent = 2;  // below soc_cutoff 0.05
        co_await r.at(2.0);
        CHECK_FALSE(r.watch.low_battery().has_value());
        r.reading.inputs->allow_to_discharge = false;
        co_await r.at(3.0);
        CHECK(r.watch.low_battery() == std::optional<std::string>("the BMS does not allow discharging"));
    });
    CHECK(r.count("safe") == 1);  // the restart with the clamp, for the BMS's reason only
    CHECK_FALSE(r.log->has("soc_cutoff"));
}
