// The table of critical settings and how read values are judged.
#include "checks.hpp"

#include <catch2/catch.hpp>

#include <cctype>
#include <set>
#include <string>

using namespace moat::critical;
using moat::Value;

namespace {

const Check& check(std::string_view name) {
    const Check* c = find_check(name);
    REQUIRE(c != nullptr);
    return *c;
}

State state_of(std::string_view name, Value v, Facts f = {}) {
    return evaluate(check(name), Reading{true, std::move(v)}, f).state;
}

} // namespace

TEST_CASE("every check has a unique name usable as a D-Bus path element and an absolute path", "[critical]") {
    std::set<std::string_view> names;
    for (const Check& c : checks()) {
        INFO(c.name);
        CHECK(names.insert(c.name).second);
        CHECK_FALSE(c.name.empty());
        for (char ch : c.name) CHECK(std::isalnum(static_cast<unsigned char>(ch)));
        CHECK(c.path.starts_with("/"));
        CHECK_FALSE(c.expected.empty());
        CHECK(c.judge != nullptr);
    }
    CHECK(checks().size() == 18);
    CHECK(find_check("NoSuchCheck") == nullptr);
}

TEST_CASE("a missing service or path is unknown, never ok", "[critical]") {
    for (const Check& c : checks()) {
        INFO(c.name);
        Verdict v = evaluate(c, Reading{}, {});
        CHECK(v.state == State::unknown);
        CHECK(v.text.find("not on the bus") != std::string::npos);
        CHECK(evaluate(c, Reading::of(Value())).state == State::unknown);
    }
}

TEST_CASE("an invalid value on a present path: unknown, but critical for the BMS charge voltage", "[critical]") {
    CHECK(evaluate(check("OvervoltageFeedIn"), Reading{true, Value()}).state == State::unknown);
    CHECK(evaluate(check("BmsChargeVoltage"), Reading{true, Value()}).state == State::critical);
}

TEST_CASE("OvervoltageFeedIn must be 0; 0 is the safe value", "[critical]") {
    CHECK(state_of("OvervoltageFeedIn", 0) == State::ok);
    CHECK(state_of("OvervoltageFeedIn", 0.0) == State::ok);
    CHECK(state_of("OvervoltageFeedIn", 1) == State::critical);
    CHECK(state_of("OvervoltageFeedIn", true) == State::critical);
    CHECK(state_of("OvervoltageFeedIn", "0") == State::unknown);  // a string is no setting value we know
    REQUIRE(check("OvervoltageFeedIn").safe_value);
    CHECK(*check("OvervoltageFeedIn").safe_value == Value(0));
    CHECK(check("OvervoltageFeedIn").role == Role::settings);
    Verdict v = evaluate(check("OvervoltageFeedIn"), Reading{true, 1});
    CHECK(v.text.find("charge-current limit") == std::string::npos);  // says what happens, not the rule
    CHECK(v.text.find("nothing protects the battery") != std::string::npos);
}

TEST_CASE("the inverter's helpers agree with the table", "[critical]") {
    CHECK(overvoltage_feed_in(Value(1)).state == State::critical);
    CHECK(overvoltage_feed_in(Value(0)).state == State::ok);
    CHECK(overvoltage_feed_in(Value()).state == State::unknown);  // no settings service: not ok, not critical
    CHECK(hub4_mode(Value(3)).state == State::ok);
    CHECK(hub4_mode(Value(1)).state == State::warning);
    CHECK(hub4_mode(Value(2)).state == State::warning);
    CHECK(hub4_mode(Value()).state == State::unknown);
    CHECK(hub4_mode(Value(1)).text.find("ESS mode 1") != std::string::npos);
}

TEST_CASE("the ESS assistant, DVCC and the Multi's blocking flags", "[critical]") {
    CHECK(state_of("AssistantId", 5) == State::ok);
    CHECK(state_of("AssistantId", 0) == State::warning);
    CHECK(state_of("Dvcc", 1) == State::ok);
    CHECK(state_of("Dvcc", 3) == State::ok);   // more bits, DVCC still on
    CHECK(state_of("Dvcc", 2) == State::critical);
    CHECK(state_of("Dvcc", 0) == State::critical);
    CHECK(state_of("DisableFeedIn", 0) == State::ok);
    CHECK(state_of("DisableFeedIn", 1) == State::warning);
    CHECK(state_of("DisableCharge", 1) == State::warning);
    CHECK_FALSE(check("DisableCharge").safe_value);  // warn, do not change
    CHECK_FALSE(check("Hub4Mode").safe_value);
    CHECK_FALSE(check("Dvcc").safe_value);
}

TEST_CASE("the BMS charge voltage: > 0 and plausible", "[critical]") {
    CHECK(state_of("BmsChargeVoltage", 55.2) == State::ok);
    CHECK(state_of("BmsChargeVoltage", 0.0) == State::critical);
    CHECK(state_of("BmsChargeVoltage", -1) == State::critical);
    CHECK(state_of("BmsChargeVoltage", 560.0) == State::warning);
    CHECK(check("BmsChargeVoltage").role == Role::battery);
}

TEST_CASE("the user's charge voltage and current limits", "[critical]") {
    Facts with_bms{55.2, 0};
    CHECK(state_of("MaxChargeVoltage", 0.0, with_bms) == State::ok);
    CHECK(state_of("MaxChargeVoltage", 0.0) == State::warning);  // 0 and no BMS value
    CHECK(state_of("MaxChargeVoltage", 56.0, with_bms) == State::ok);
    CHECK(evaluate(check("MaxChargeVoltage"), Reading{true, 56.0}, with_bms).text.find("lower one") !=
          std::string::npos);
    CHECK(state_of("MaxChargeCurrent", -1) == State::ok);
    CHECK(state_of("MaxChargeCurrent", 0) == State::warning);
    CHECK(state_of("MaxChargeCurrent", 50) == State::ok);
}

TEST_CASE("MaxFeedInPower is compared with the planned export", "[critical]") {
    CHECK(state_of("MaxFeedInPower", -1.0) == State::ok);
    CHECK(state_of("MaxFeedInPower", 100.0) == State::ok);  // nothing planned
    CHECK(state_of("MaxFeedInPower", 100.0, Facts{std::nullopt, 500}) == State::warning);
    CHECK(state_of("MaxFeedInPower", 500.0, Facts{std::nullopt, 500}) == State::ok);
    CHECK(state_of("MaxFeedInPower", -1.0, Facts{std::nullopt, 500}) == State::ok);
}

TEST_CASE("the debug offsets must be 0 and can be reset to 0", "[critical]") {
    for (auto name : {"SolarVoltageOffset", "VebusVoltageOffset", "CurrentOffset"}) {
        INFO(name);
        CHECK(state_of(name, 0.0) == State::ok);
        CHECK(state_of(name, 0.4) == State::critical);
        CHECK(check(name).role == Role::system);
        REQUIRE(check(name).safe_value);
        CHECK(*check(name).safe_value == Value(0.0));
    }
}

TEST_CASE("informational checks are ok with any value, but still unknown when missing", "[critical]") {
    for (auto name : {"PreventFeedback", "BatteryLifeState", "MaxDischargePower", "AcPowerSetPoint", "AccessLevel"}) {
        INFO(name);
        CHECK(state_of(name, 1) == State::ok);
        CHECK(evaluate(check(name), Reading{}).state == State::unknown);
    }
    CHECK(evaluate(check("AccessLevel"), Reading{true, 3}).text.find("debug offsets") != std::string::npos);
}

TEST_CASE("states: names, order of badness and alarm levels", "[critical]") {
    for (State s : {State::ok, State::warning, State::critical, State::unknown}) CHECK(parse_state(to_string(s)) == s);
    CHECK_FALSE(parse_state("fine"));
    CHECK(worse(State::ok, State::warning) == State::warning);
    CHECK(worse(State::warning, State::unknown) == State::unknown);
    CHECK(worse(State::critical, State::unknown) == State::critical);
    CHECK(worse(State::ok, State::ok) == State::ok);
    CHECK(alarm_level(State::ok) == 0);
    CHECK(alarm_level(State::warning) == 1);
    CHECK(alarm_level(State::unknown) == 1);
    CHECK(alarm_level(State::critical) == 2);
}
