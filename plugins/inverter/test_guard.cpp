#include <catch2/catch.hpp>

#include "guard.hpp"

using namespace moat::inverter;
using namespace std::chrono_literals;

namespace {
GuardInput healthy() {
    GuardInput g;
    g.vebus_present = g.battery_present = true;
    g.system_age = g.vebus_age = g.battery_age = 1s;
    g.hub4_mode = 3;
    g.assistant_id = 5;
    return g;
}
} // namespace

TEST_CASE("guard: healthy inputs run and write", "[inverter][guard]") {
    auto d = evaluate_guard(healthy(), 10s);
    CHECK(d.inputs_ok);
    CHECK(d.may_write);
    CHECK_FALSE(d.holding);
}

TEST_CASE("guard: a vanished vebus stops the loop and all writes", "[inverter][guard]") {
    auto g = healthy();
    g.vebus_present = false;
    auto d = evaluate_guard(g, 10s);
    CHECK_FALSE(d.inputs_ok);
    CHECK_FALSE(d.may_write);
}

TEST_CASE("guard: a vanished battery stops the loop but 0 W may be written", "[inverter][guard]") {
    auto g = healthy();
    g.battery_present = false;
    auto d = evaluate_guard(g, 10s);
    CHECK_FALSE(d.inputs_ok);
    CHECK(d.may_write);
    CHECK(d.input_problem.find("battery") != std::string::npos);
}

TEST_CASE("guard: a frozen service stops the loop after the timeout only", "[inverter][guard]") {
    auto g = healthy();
    g.battery_age = 10s;
    CHECK(evaluate_guard(g, 10s).inputs_ok);
    g.battery_age = 10s + 1ms;
    auto d = evaluate_guard(g, 10s);
    CHECK_FALSE(d.inputs_ok);
    CHECK(d.input_problem.find("battery") != std::string::npos);
}

TEST_CASE("guard: invalid inputs hold first and stop after the timeout", "[inverter][guard]") {
    auto g = healthy();
    g.problems = {"/Info/MaxChargeVoltage: 0 <= 0"};
    g.invalid_for = 3s;
    auto d = evaluate_guard(g, 10s);
    CHECK_FALSE(d.inputs_ok);
    CHECK(d.holding);
    g.invalid_for = 11s;
    d = evaluate_guard(g, 10s);
    CHECK_FALSE(d.inputs_ok);
    CHECK_FALSE(d.holding);
    CHECK(d.input_problem.find("MaxChargeVoltage") != std::string::npos);
}

TEST_CASE("guard: ESS mode other than 3 or no assistant forbids writing", "[inverter][guard]") {
    auto g = healthy();
    g.hub4_mode = 1;
    CHECK_FALSE(evaluate_guard(g, 10s).may_write);
    CHECK(evaluate_guard(g, 10s).inputs_ok);
    g.hub4_mode.reset();
    CHECK_FALSE(evaluate_guard(g, 10s).may_write);
    g = healthy();
    g.assistant_id = 0;
    CHECK_FALSE(evaluate_guard(g, 10s).may_write);
}

TEST_CASE("guard: the safe setpoints are refused only by a Multi known to be in another mode", "[inverter][guard]") {
    auto g = healthy();
    CHECK(evaluate_guard(g, 10s).may_write_safe);
    g.vebus_present = g.system_present = false;  // the system service is gone: the last known Multi
    CHECK_FALSE(evaluate_guard(g, 10s).may_write);
    CHECK(evaluate_guard(g, 10s).may_write_safe);
    g = healthy();
    g.hub4_mode.reset();
    g.assistant_id.reset();  // the Multi's values are invalid
    CHECK_FALSE(evaluate_guard(g, 10s).may_write);
    CHECK(evaluate_guard(g, 10s).may_write_safe);
    g.hub4_mode = 1;  // another controller owns the setpoint
    CHECK_FALSE(evaluate_guard(g, 10s).may_write_safe);
    g = healthy();
    g.assistant_id = 0;
    CHECK_FALSE(evaluate_guard(g, 10s).may_write_safe);
}

TEST_CASE("guard: OvervoltageFeedIn 1 refuses closed-loop modes only", "[inverter][guard]") {
    CHECK(refuse_closed_loop(Mode::p_grid, 1.0));
    CHECK(refuse_closed_loop(Mode::remote, 1.0));
    CHECK_FALSE(refuse_closed_loop(Mode::off, 1.0));
    CHECK_FALSE(refuse_closed_loop(Mode::idle, 1.0));
    CHECK_FALSE(refuse_closed_loop(Mode::p_grid, 0.0));
    CHECK_FALSE(refuse_closed_loop(Mode::p_grid, std::nullopt));
}
