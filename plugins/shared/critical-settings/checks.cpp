#include "checks.hpp"

#include <cmath>

#include <fmt/format.h>

namespace moat::critical {

namespace {

// A BMS charge voltage above this is not one of a Multi's batteries (12/24/48 V systems).
constexpr double max_plausible_voltage = 100.0;

std::optional<double> number(const Value& v) {
    auto n = v.as_number();
    if (n && std::isfinite(*n)) return n;
    return std::nullopt;
}

Verdict not_a_number(const Value& v) {
    return {State::unknown, fmt::format("not a number: {:r}", v)};
}

/// For the checks whose value should be exactly `want`; `bad` says what another value means.
template <int want, State bad_state>
Verdict exactly(const Value& v, std::string_view good, std::string_view bad) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    if (*n == want) return {State::ok, std::string(good)};
    return {bad_state, fmt::format("{:g}: {}", *n, bad)};
}

Verdict overvoltage_feed_in_judge(const Value& v, const Facts&) {
    return exactly<0, State::critical>(
        v, "off: DVCC holds the solar chargers to the battery's charge-current limit",
        "feed-in of excess DC-coupled solar power is on: DVCC lets the solar chargers run at full current, "
        "nothing protects the battery when the surplus cannot leave through the Multi");
}

Verdict hub4_mode_judge(const Value& v, const Facts&) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    if (*n == 3) return {State::ok, "ESS mode 3: external control"};
    if (*n == 1 || *n == 2)
        return {State::warning, fmt::format("ESS mode {:g}: Victron's own loop sets the Multi's power; an external "
                                            "controller's setpoints would fight it",
                                            *n)};
    return {State::warning, fmt::format("ESS mode {:g}: not external control (3)", *n)};
}

Verdict assistant_id_judge(const Value& v, const Facts&) {
    return exactly<5, State::warning>(v, "the ESS assistant is installed",
                                      "no ESS assistant in the Multi: ESS setpoints mean nothing");
}

Verdict dvcc_judge(const Value& v, const Facts&) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    if ((static_cast<long long>(*n) & 1) == 1) return {State::ok, "DVCC is on"};
    return {State::critical, fmt::format("{:g}: DVCC is off: the BMS's limits never reach the solar chargers", *n)};
}

Verdict bms_charge_voltage_judge(const Value& v, const Facts&) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    if (*n <= 0)
        return {State::critical, fmt::format("{:g} V: DVCC may set the chargers to 0 V; a controller must treat "
                                             "it as missing",
                                             *n)};
    if (*n > max_plausible_voltage)
        return {State::warning, fmt::format("{:g} V: implausible for a Multi's battery", *n)};
    return {State::ok, fmt::format("{:g} V", *n)};
}

Verdict user_charge_voltage_judge(const Value& v, const Facts& f) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    if (*n <= 0)
        return f.bms_charge_voltage
                   ? Verdict{State::ok, "no user limit: the BMS's charge voltage counts"}
                   : Verdict{State::warning, "no user limit and no BMS charge voltage: nothing limits the "
                                             "charge voltage"};
    if (f.bms_charge_voltage && *n > *f.bms_charge_voltage)
        return {State::ok, fmt::format("{:g} V, above the BMS's {:g} V: the lower one counts", *n,
                                       *f.bms_charge_voltage)};
    return {State::ok, fmt::format("user limit {:g} V", *n)};
}

Verdict user_charge_current_judge(const Value& v, const Facts&) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    if (*n < 0) return {State::ok, "no user limit"};
    if (*n == 0) return {State::warning, "0 A: all charging is blocked (user charge limit)"};
    return {State::ok, fmt::format("user limit {:g} A", *n)};
}

Verdict max_feed_in_judge(const Value& v, const Facts& f) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    if (*n < 0) return {State::ok, "no feed-in limit"};
    if (f.planned_export > 0 && *n < f.planned_export)
        return {State::warning, fmt::format("{:g} W, below the planned export of {:g} W: the rest goes into the "
                                            "battery",
                                            *n, f.planned_export)};
    return {State::ok, fmt::format("feed-in limited to {:g} W", *n)};
}

Verdict zero_or_warning(const Value& v, std::string_view bad) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    if (*n == 0) return {State::ok, "0"};
    return {State::warning, fmt::format("{:g}: {}", *n, bad)};
}

Verdict disable_feed_in_judge(const Value& v, const Facts&) {
    return zero_or_warning(v, "feed-in is blocked whatever the setpoint");
}

Verdict disable_charge_judge(const Value& v, const Facts&) {
    return zero_or_warning(v, "charging is blocked whatever the setpoint");
}

Verdict debug_offset_judge(const Value& v, const Facts&) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    if (*n == 0) return {State::ok, "0"};
    return {State::critical, fmt::format("{:g}: added to the charge voltage or current DVCC sends", *n)};
}

/// Informational: any value is fine; the text says what it means.
Verdict info_judge(const Value& v, const Facts&) { return {State::ok, text(v)}; }

Verdict prevent_feedback_judge(const Value& v, const Facts&) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    return {State::ok, *n != 0 ? "feed-in of AC-coupled PV is prevented" : "feed-in of AC-coupled PV is allowed"};
}

Verdict access_level_judge(const Value& v, const Facts&) {
    auto n = number(v);
    if (!n) return not_a_number(v);
    if (*n > 2) return {State::ok, fmt::format("{:g}: the debug offsets of DVCC take effect", *n)};
    return {State::ok, fmt::format("{:g}", *n)};
}

const Check table[] = {
    {"OvervoltageFeedIn", Role::settings, "/Settings/CGwacs/OvervoltageFeedIn", "0",
     "1 lets the solar chargers ignore the battery's charge-current limit", Value(0), overvoltage_feed_in_judge},
    {"Hub4Mode", Role::settings, "/Settings/CGwacs/Hub4Mode", "3",
     "1/2: Victron's loop owns the Multi's setpoints, an external controller fights it", std::nullopt,
     hub4_mode_judge},
    {"AssistantId", Role::vebus, "/Hub4/AssistantId", "5", "without the ESS assistant setpoints mean nothing",
     std::nullopt, assistant_id_judge},
    {"Dvcc", Role::settings, "/Settings/Services/Bol", "bit 0 set",
     "without DVCC the BMS's limits never reach the solar chargers", std::nullopt, dvcc_judge},
    {"BmsChargeVoltage", Role::battery, "/Info/MaxChargeVoltage", "> 0",
     "0 or none: DVCC may stop all charging", std::nullopt, bms_charge_voltage_judge, State::critical},
    {"MaxChargeVoltage", Role::settings, "/Settings/SystemSetup/MaxChargeVoltage", "0 or <= the BMS's",
     "0 relies on the BMS alone: unsafe without one", std::nullopt, user_charge_voltage_judge},
    {"MaxChargeCurrent", Role::settings, "/Settings/SystemSetup/MaxChargeCurrent", "-1 or > 0",
     "0 blocks all charging", std::nullopt, user_charge_current_judge},
    {"MaxFeedInPower", Role::settings, "/Settings/CGwacs/MaxFeedInPower", "-1 or >= planned export",
     "caps export: the surplus goes into the battery", std::nullopt, max_feed_in_judge},
    {"PreventFeedback", Role::settings, "/Settings/CGwacs/PreventFeedback", "any", "informational", std::nullopt,
     prevent_feedback_judge},
    {"DisableFeedIn", Role::vebus, "/Hub4/DisableFeedIn", "0", "feed-in blocked regardless of the setpoint",
     std::nullopt, disable_feed_in_judge},
    {"DisableCharge", Role::vebus, "/Hub4/DisableCharge", "0", "charging blocked regardless of the setpoint",
     std::nullopt, disable_charge_judge},
    {"BatteryLifeState", Role::settings, "/Settings/CGwacs/BatteryLife/State", "any",
     "matters only when falling back to ESS mode 1/2", std::nullopt, info_judge},
    {"MaxDischargePower", Role::settings, "/Settings/CGwacs/MaxDischargePower", "any", "ESS mode 1/2 only",
     std::nullopt, info_judge},
    {"AcPowerSetPoint", Role::settings, "/Settings/CGwacs/AcPowerSetPoint", "any", "ESS mode 1/2 only",
     std::nullopt, info_judge},
    {"SolarVoltageOffset", Role::system, "/Debug/BatteryOperationalLimits/SolarVoltageOffset", "0",
     "added to the solar chargers' charge voltage", Value(0.0), debug_offset_judge},
    {"VebusVoltageOffset", Role::system, "/Debug/BatteryOperationalLimits/VebusVoltageOffset", "0",
     "added to the Multi's charge voltage", Value(0.0), debug_offset_judge},
    {"CurrentOffset", Role::system, "/Debug/BatteryOperationalLimits/CurrentOffset", "0",
     "added to the charge current", Value(0.0), debug_offset_judge},
    {"AccessLevel", Role::settings, "/Settings/System/AccessLevel", "any",
     "above 2 the debug offsets take effect", std::nullopt, access_level_judge},
};

} // namespace

std::string_view to_string(State s) {
    switch (s) {
    case State::ok: return "ok";
    case State::warning: return "warning";
    case State::critical: return "critical";
    case State::unknown: return "unknown";
    }
    return "unknown";
}

std::optional<State> parse_state(std::string_view s) {
    for (State st : {State::ok, State::warning, State::critical, State::unknown})
        if (to_string(st) == s) return st;
    return std::nullopt;
}

State worse(State a, State b) {
    auto rank = [](State s) {
        switch (s) {
        case State::ok: return 0;
        case State::warning: return 1;
        case State::unknown: return 2;
        case State::critical: return 3;
        }
        return 2;
    };
    return rank(a) >= rank(b) ? a : b;
}

int alarm_level(State s) {
    return s == State::ok ? 0 : s == State::critical ? 2 : 1;
}

std::string_view to_string(Role r) {
    switch (r) {
    case Role::settings: return "settings";
    case Role::system: return "system";
    case Role::vebus: return "vebus";
    case Role::battery: return "battery";
    }
    return "?";
}

std::span<const Check> checks() { return table; }

const Check* find_check(std::string_view name) {
    for (const Check& c : table)
        if (c.name == name) return &c;
    return nullptr;
}

Verdict evaluate(const Check& check, const Reading& reading, const Facts& facts) {
    if (!reading.present) return {State::unknown, "not on the bus (the service or the path is missing)"};
    if (reading.value.is_invalid()) return {check.when_invalid, "no value (invalid)"};
    return check.judge(reading.value, facts);
}

Verdict overvoltage_feed_in(const Value& value) {
    return evaluate(*find_check("OvervoltageFeedIn"), Reading::of(value));
}

Verdict hub4_mode(const Value& value) { return evaluate(*find_check("Hub4Mode"), Reading::of(value)); }

} // namespace moat::critical
