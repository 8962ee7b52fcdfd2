#include "guard.hpp"

#include "checks.hpp"  // plugins/shared/critical-settings

#include <fmt/format.h>

namespace moat::inverter {

namespace {
double secs(GuardDuration d) { return std::chrono::duration<double>(d).count(); }
} // namespace

GuardDecision evaluate_guard(const GuardInput& in, GuardDuration timeout) {
    GuardDecision d;
    if (!in.vebus_present) d.input_problem = "the vebus service is not on the bus";
    else if (!in.battery_present) d.input_problem = "the battery service is not on the bus";
    else {
        struct Age { const char* what; const std::optional<GuardDuration>& age; };
        for (const Age& a : {Age{"system", in.system_age}, Age{"vebus", in.vebus_age}, Age{"battery", in.battery_age}})
            if (a.age && *a.age > timeout) {
                d.input_problem = fmt::format("no update from the {} service for {:.1f} s", a.what, secs(*a.age));
                break;
            }
    }
    if (d.input_problem.empty() && !in.problems.empty()) {
        std::string list;
        for (auto& p : in.problems) list += (list.empty() ? "" : ", ") + p;
        if (in.invalid_for > timeout) d.input_problem = fmt::format("inputs invalid for {:.1f} s: {}", secs(in.invalid_for), list);
        else {
            d.holding = true;
            d.input_problem = "inputs invalid: " + list;
        }
    }
    d.inputs_ok = d.input_problem.empty();

    // Name what is really missing: the system service names the Multi.
    if (!in.vebus_present)
        d.write_problem = !in.system_present       ? "no com.victronenergy.system service (it names the Multi's service)"
                          : in.vebus_name.empty() ? "com.victronenergy.system names no Multi (/VebusService is empty)"
                                                  : fmt::format("the Multi's service {} is not on the bus", in.vebus_name);
    else if (auto settings = check_critical_settings({in.hub4_mode, std::nullopt}); !settings.write_problem.empty())
        d.write_problem = settings.write_problem;
    else if (!in.assistant_id || *in.assistant_id != 5)
        d.write_problem = in.assistant_id ? fmt::format("no ESS assistant (AssistantId {:g}, not 5)", *in.assistant_id)
                                          : "no ESS assistant (AssistantId unknown)";
    d.may_write = d.write_problem.empty();
    const bool other_mode = in.hub4_mode && !check_critical_settings({in.hub4_mode, std::nullopt}).write_problem.empty();
    const bool other_assistant = in.assistant_id && *in.assistant_id != 5;
    d.may_write_safe = !other_mode && !other_assistant;
    return d;
}

bool closed_loop(Mode mode) { return mode != Mode::off && mode != Mode::idle; }

CriticalVerdict check_critical_settings(const CriticalSettings& s) {
    // The judgement is the guard's (one table of critical settings for both
    // plugins); the wording stays the controller's.
    auto value = [](const std::optional<double>& d) { return d ? Value(*d) : Value(); };
    CriticalVerdict v;
    if (critical::hub4_mode(value(s.hub4_mode)).state != critical::State::ok)
        v.write_problem = s.hub4_mode ? fmt::format("ESS mode (Hub4Mode) is {:g}, not 3", *s.hub4_mode)
                                      : "ESS mode (Hub4Mode) is unknown";
    if (s.overvoltage_feed_in &&
        critical::overvoltage_feed_in(value(s.overvoltage_feed_in)).state == critical::State::critical) {
        v.closed_loop_problem = "/Settings/CGwacs/OvervoltageFeedIn is 1 (feed-in of DC-coupled PV overvoltage "
                                "would fight the external control loop)";
        v.wrong["/Settings/CGwacs/OvervoltageFeedIn"] = *s.overvoltage_feed_in;
    }
    return v;
}

std::optional<std::string> refuse_closed_loop(Mode mode, std::optional<double> ovf) {
    if (!closed_loop(mode)) return std::nullopt;
    auto settings = check_critical_settings({std::nullopt, ovf});
    if (settings.closed_loop_problem.empty()) return std::nullopt;
    return fmt::format("refusing mode {}: {}", to_string(mode), settings.closed_loop_problem);
}

} // namespace moat::inverter
