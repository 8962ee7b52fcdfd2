// The mode supervisor (§15, §18.2, §18.3, §18.5) in virtual time: a fake
// SupervisorIo whose modes run, fail or end on cue, and scripted requests.
#include "inverter_test_support.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <moat/log.hpp>

#include "supervisor.hpp"
#include "supervisor_test_support.hpp"

using namespace moat;
using namespace moat::inverter;
using namespace moat::inverter::test;
using namespace std::chrono_literals;

namespace {

struct SupervisorRig {
    explicit SupervisorRig(Mode start = Mode::p_grid, Duration lockout = 30s) : lockout(lockout), start(start) {
        loop.set_clock(clock);
    }
    Duration lockout;
    Mode start;
    Loop loop;
    VirtualClock clock{loop};
    FakeSupervisorIo io{clock};
    ModeSupervisor sup{io, clock, Logger("inverter", null_sink()), lockout, start, {}};

    /// The supervisor and `script` together, at most `total` of virtual time;
    /// the supervisor is stopped when the script ends. `events` are the
    /// fake's events until then.
    void run(Duration total, std::function<Task<void>()> script) {
        run_for(loop, clock, total, [&]() -> Task<void> {
            auto body = [&](TaskGroup& g) -> Task<void> {
                g.spawn(sup.run(), "supervisor");
                auto s = script();
                co_await s;
                events = io.events;
                g.cancel();
            };
            co_await with_group(body);
        });
    }
    std::vector<std::string> events;
    /// Sleep until `t` seconds after the start.
    Task<void> at(double t) {
        auto until = io.t0 + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(t));
        co_await sleep_for(until - clock.now());
    }
};

using Kind = ModeChangeError::Kind;

/// The refusal of `change`: its kind and message ("" when it was accepted).
template <class Change>
std::pair<std::optional<Kind>, std::string> refusal(Change change) {
    try {
        change();
    } catch (const ModeChangeError& e) {
        return {e.kind, e.what()};
    }
    return {std::nullopt, ""};
}

std::vector<std::string> strings(std::initializer_list<const char*> l) { return {l.begin(), l.end()}; }

} // namespace

TEST_CASE("supervisor: no mode before the inputs are complete, then the configured one", "[inverter][supervisor]") {
    SupervisorRig r;
    r.run(10s, [&]() -> Task<void> {
        co_await r.at(5);
        CHECK(r.io.events.empty());
        CHECK_FALSE(r.sup.ever_started());
        CHECK_FALSE(r.sup.lockout_left());
        r.sup.set_inputs_ok(true);
        co_await r.at(6);
    });
    CHECK(r.events == strings({"5.0 start p_grid"}));
    CHECK(r.sup.mode() == Mode::p_grid);
    CHECK(r.sup.op().at("power") == 0.0);  // the built-in default
}

TEST_CASE("supervisor: another mode is refused for 30 s after a start, its own parameters never",
          "[inverter][supervisor]") {
    SupervisorRig r;
    r.run(70s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(10);
        auto [kind, what] = refusal([&] { r.sup.change_mode("p_inv", {{"power", 500.0}}); });
        CHECK(kind == Kind::too_early);
        CHECK(what == "mode p_grid started less than 30 s ago; try again in 20 s");
        CHECK(*r.sup.lockout_left() == 20s);
        // The same mode: parameters change at once, the mode keeps running.
        CHECK_FALSE(refusal([&] { r.sup.change_mode("p_grid", {{"power", -100.0}}); }).first);
        CHECK(r.sup.op().at("power") == -100.0);
        co_await r.at(29.9);
        CHECK(refusal([&] { r.sup.change_mode("p_inv", {}); }).first == Kind::too_early);
        co_await r.at(30.0);
        CHECK(*r.sup.lockout_left() == 0s);
        CHECK_FALSE(refusal([&] { r.sup.change_mode("p_inv", {{"power", 500.0}}); }).first);
        CHECK(r.sup.pending() == Mode::p_inv);
        co_await r.at(30.1);
        // The lock-out counts from the new mode's start.
        CHECK(refusal([&] { r.sup.change_mode("p_grid", {}); }).first == Kind::too_early);
        co_await r.at(60.0);
        CHECK_FALSE(refusal([&] { r.sup.change_mode("gridsetpoint", {}); }).first);  // the old name
        co_await r.at(60.1);
    });
    CHECK(r.events == strings({"0.0 start p_grid", "30.0 stop p_grid", "30.0 start p_inv", "60.0 stop p_inv",
                                  "60.0 start p_grid"}));
    CHECK(r.sup.op().at("power") == 0.0);  // another mode starts from its defaults (§5.1)
}

TEST_CASE("supervisor: unknown modes and bad arguments are refused and change nothing",
          "[inverter][supervisor]") {
    SupervisorRig r;
    r.run(40s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(1);
        // Within the lock-out the window is checked first (§15): too_early wins.
        CHECK(refusal([&] { r.sup.change_mode("nonsense", {}); }).first == Kind::too_early);
        co_await r.at(31);
        CHECK(refusal([&] { r.sup.change_mode("nonsense", {}); }) ==
              std::pair{std::optional(Kind::unknown), std::string("unknown mode 'nonsense'")});
        CHECK(refusal([&] { r.sup.change_mode("analyze", {{"skip", 8.0}}); }).first == Kind::invalid_value);
        CHECK(refusal([&] { r.sup.change_mode("p_inv", {{"phase", 4.0}}); }).first == Kind::invalid_value);
        auto bogus = refusal([&] { r.sup.change_mode("p_inv", {{"bogus", 1.0}}); });
        CHECK(bogus.first == Kind::unknown_parameter);
        CHECK_THAT(bogus.second, Catch::EndsWith("(the parameters of p_inv: power, excess, phase)"));
        CHECK(refusal([&] { r.sup.change_param("bogus", 1.0); }).first == Kind::unknown_parameter);
        CHECK(refusal([&] { r.sup.change_param("_private", 1.0); }).first == Kind::unknown_parameter);
        CHECK(r.sup.check_param("bogus", 1.0).has_value());
        CHECK_FALSE(r.sup.check_param("power", 1.0).has_value());
        co_await r.at(32);
    });
    CHECK(r.events == strings({"0.0 start p_grid"}));
    CHECK_FALSE(r.sup.pending());
    CHECK(r.sup.error().empty());
}

TEST_CASE("supervisor: a mode that fails or ends falls back to off at 0 W and keeps the error",
          "[inverter][supervisor]") {
    SupervisorRig r(Mode::p_inv);
    r.io.fail_after[Mode::p_inv] = 5s;
    r.io.end_after[Mode::p_grid] = 2s;
    r.run(80s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(5.1);
        CHECK(r.sup.mode() == Mode::off);
        CHECK(r.sup.op().at("power") == 0.0);
        CHECK(r.sup.error() == "mode p_inv failed: boom");
        // The lock-out counts from off's start; a change then clears the error.
        CHECK(refusal([&] { r.sup.change_mode("p_grid", {}); }).first == Kind::too_early);
        co_await r.at(35.0);
        r.sup.change_mode("p_grid", {});
        CHECK(r.sup.error().empty());
        co_await r.at(37.1);
        CHECK(r.sup.error() == "mode p_grid ended");
        CHECK(r.sup.mode() == Mode::off);
    });
    CHECK(r.events == strings({"0.0 start p_inv", "5.0 start off", "35.0 stop off", "35.0 start p_grid",
                                  "37.0 start off"}));
}

TEST_CASE("supervisor: lost inputs stop the mode with the safe setpoints; it resumes with its parameters",
          "[inverter][supervisor]") {
    SupervisorRig r;
    r.run(20s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(1);
        r.sup.change_param("power", 300.0);
        co_await r.at(5);
        r.sup.set_inputs_ok(false);
        co_await r.at(6);
        CHECK(r.io.running_op == nullptr);
        CHECK_FALSE(r.sup.inputs_ok());
        co_await r.at(8);
        r.sup.set_inputs_ok(true);
        co_await r.at(9);
    });
    CHECK(r.events == strings({"0.0 start p_grid", "5.0 stop p_grid", "5.0 safe input lost", "8.0 start p_grid"}));
    CHECK(r.sup.op().at("power") == 300.0);
}

TEST_CASE("supervisor: restarts of the same mode do not renew the lock-out", "[inverter][supervisor]") {
    SupervisorRig r;
    r.run(40s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(20);
        r.sup.set_inputs_ok(false);
        co_await r.at(25);
        r.sup.set_inputs_ok(true);
        co_await r.at(27);
        r.sup.restart("battery low", true);
        co_await r.at(29.9);
        CHECK(refusal([&] { r.sup.change_mode("p_inv", {}); }).first == Kind::too_early);
        co_await r.at(30);
        CHECK(*r.sup.lockout_left() == 0s);  // 30 s after p_grid's first start
        CHECK_FALSE(refusal([&] { r.sup.change_mode("p_inv", {}); }).first);
        co_await r.at(30.1);
    });
    CHECK(r.events == strings({"0.0 start p_grid", "20.0 stop p_grid", "20.0 safe input lost", "25.0 start p_grid",
                               "27.0 stop p_grid", "27.0 safe battery low", "27.0 start p_grid", "30.0 stop p_grid",
                               "30.0 start p_inv"}));
}

TEST_CASE("supervisor: a restart request restarts the running mode, with the safe setpoints or without",
          "[inverter][supervisor]") {
    SupervisorRig r(Mode::off);
    r.run(20s, [&]() -> Task<void> {
        r.sup.restart("before anything runs", true);  // nothing runs: forgotten
        co_await r.at(1);
        r.sup.set_inputs_ok(true);
        co_await r.at(2);
        r.sup.restart("battery low", true);
        co_await r.at(4);
        r.sup.restart("battery no longer low", false);
        co_await r.at(5);
    });
    CHECK(r.events == strings({"1.0 start off", "2.0 stop off", "2.0 safe battery low", "2.0 start off",
                                  "4.0 stop off", "4.0 start off"}));
}

TEST_CASE("supervisor: changes are serialised; arguments for a pending mode go to it", "[inverter][supervisor]") {
    SupervisorRig r(Mode::p_grid, 0s);
    r.run(10s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(1);
        r.sup.change_mode("p_inv", {{"power", 600.0}});
        // Before the supervisor ran: a second mode is refused, the pending one takes arguments.
        CHECK(refusal([&] { r.sup.change_mode("i_batt", {}); }).first == Kind::too_early);
        r.sup.change_mode("p_inv", {{"phase", 2.0}});
        r.sup.change_param("power", 800.0);
        CHECK(r.sup.target() == Mode::p_inv);
        CHECK(r.sup.target_op().at("power") == 800.0);
        CHECK(r.sup.mode() == Mode::p_grid);
        co_await r.at(2);
        // SetModeParam reaches the running mode's op, which it reads every round.
        REQUIRE(r.io.running_op != nullptr);
        r.sup.change_param("power", 250.0);
        CHECK(r.io.running_op->at("power") == 250.0);
    });
    CHECK(r.events == strings({"0.0 start p_grid", "1.0 stop p_grid", "1.0 start p_inv"}));
    CHECK(r.sup.op().at("phase") == 2.0);
    CHECK(r.io.changes > 0);
}

TEST_CASE("supervisor: a safe restart that meets a mode change still writes the safe setpoints",
          "[inverter][supervisor]") {
    SupervisorRig r(Mode::p_grid, 0s);
    r.run(5s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(1);
        r.sup.change_mode("p_inv", {});
        r.sup.restart("battery low", true);  // before the supervisor's next turn
        co_await r.at(2);
    });
    CHECK(r.events == strings({"0.0 start p_grid", "1.0 stop p_grid", "1.0 safe battery low", "1.0 start p_inv"}));
}

TEST_CASE("supervisor: restart requests merge; a safe one is not downgraded", "[inverter][supervisor]") {
    SupervisorRig r;
    r.run(5s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(1);
        r.sup.restart("battery low", true);
        r.sup.restart("battery no longer low", false);
        co_await r.at(2);
    });
    CHECK(r.events == strings({"0.0 start p_grid", "1.0 stop p_grid", "1.0 safe battery low", "1.0 start p_grid"}));
}

TEST_CASE("supervisor: fall_back ends the mode with the safe setpoints, then off at 0 W with the reason",
          "[inverter][supervisor]") {
    SupervisorRig r(Mode::p_inv);
    r.run(5s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(1);
        r.sup.fall_back("mode p_inv refused: OvervoltageFeedIn is 1", true);
        co_await r.at(2);
    });
    CHECK(r.events == strings({"0.0 start p_inv", "1.0 stop p_inv", "1.0 safe mode p_inv refused: OvervoltageFeedIn is 1",
                               "1.0 start off"}));
    CHECK(r.sup.mode() == Mode::off);
    CHECK(r.sup.op().at("power") == 0.0);
    CHECK(r.sup.error() == "mode p_inv refused: OvervoltageFeedIn is 1");
}

TEST_CASE("supervisor: analyze is a mode like the others (the BMS is checked when it runs)", "[inverter][supervisor]") {
    SupervisorRig r(Mode::analyze);
    r.run(40s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(31);
        r.sup.change_mode("p_grid", {});
        co_await r.at(32);
        r.sup.change_param("power", 10.0);
        co_await r.at(33);
    });
    CHECK(r.events == strings({"0.0 start analyze", "31.0 stop analyze", "31.0 start p_grid"}));
    CHECK(r.sup.error().empty());
}

TEST_CASE("supervisor: a mode's hand-over switches at once, past the lock-out, without the safe setpoints",
          "[inverter][supervisor]") {
    SupervisorRig r;
    r.run(60s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(1);
        CHECK(refusal([&] { r.sup.change_mode("analyze", {{"p_dis", 500.0}}); }).first == Kind::too_early);
        co_await r.at(31);
        r.sup.change_mode("analyze", {{"p_dis", 500.0}, {"excess", 100.0}});
        co_await r.at(40);
        // analyze is done 9 s after its start, well within the lock-out: it is its own end, not a request
        r.sup.hand_over(Mode::p_inv, {{"power", 0.0}, {"excess", 100.0}}, "analyze finished");
        CHECK(r.sup.pending() == Mode::p_inv);
        co_await r.at(40.1);
        CHECK(r.sup.mode() == Mode::p_inv);
        CHECK(r.sup.op() == Op{{"power", 0.0}, {"excess", 100.0}, {"phase", std::nullopt}});
        CHECK(r.sup.error().empty());
        // the new mode has its own lock-out
        CHECK(refusal([&] { r.sup.change_mode("off", {}); }).first == Kind::too_early);
        // a hand-over of a mode that is no longer running changes nothing once a change is pending
        co_await r.at(45);
        r.sup.hand_over(Mode::off, {{"power", 0.0}}, "late");
        CHECK(r.sup.pending() == Mode::off);
        r.sup.hand_over(Mode::p_grid, {}, "later");
        CHECK(r.sup.pending() == Mode::off);
        CHECK_THROWS_AS(r.sup.hand_over(Mode::p_inv, {{"phase", 9.0}}, "bad"), std::invalid_argument);
        co_await r.at(46);
    });
    CHECK(r.events == strings({"0.0 start p_grid", "31.0 stop p_grid", "31.0 start analyze", "40.0 stop analyze",
                               "40.0 start p_inv", "45.0 stop p_inv", "45.0 start off"}));
}

TEST_CASE("supervisor: a mode that aborts gets the safe setpoints before off", "[inverter][supervisor]") {
    SupervisorRig r(Mode::analyze);
    r.io.abort_after[Mode::analyze] = 7s;
    r.run(10s, [&]() -> Task<void> {
        r.sup.set_inputs_ok(true);
        co_await r.at(8);
    });
    CHECK(r.events == strings({"0.0 start analyze", "7.0 safe mode analyze failed: lost the BMS", "7.0 start off"}));
    CHECK(r.sup.mode() == Mode::off);
    CHECK(r.sup.op().at("power") == 0.0);
    CHECK(r.sup.error() == "mode analyze failed: lost the BMS");
}
