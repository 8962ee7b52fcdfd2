#include "aggregate.hpp"

#include "python.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <optional>
#include <string>
#include <utility>

namespace moat::statusline {

std::string Incomplete::message() const
{
    return fmt::format("{} {}: {}", service, path, reason);
}

namespace {

// Why a reading cannot enter the sums, or nullopt when it can.
std::optional<std::string> unusable(const Reading& r)
{
    if (r.state() != Reading::State::present)
        return std::string(state_name(r.state()));
    const moat::Value& v = r.value();
    if (v.is_invalid())
        return "invalid";
    if (!v.is_number())
        return fmt::format("not a number: {:r}", v);
    return std::nullopt;
}

// The phase count as a number of phases, or the reason it is none. Missing
// or invalid counts as 0 phases: in a grid outage the AC input goes away, and
// the DC part (the battery) is what the owner wants to see then.
std::variant<std::size_t, std::string> phase_count(const Reading& r)
{
    if (r.state() == Reading::State::missing || (r.state() == Reading::State::present && r.value().is_invalid()))
        return std::size_t{0};
    if (auto why = unusable(r))
        return *why;
    const double n = *r.value().as_number();
    if (n < 0 || n > static_cast<double>(max_phases) || n != std::floor(n))
        return fmt::format("not a phase count: {:r}", r.value());
    return static_cast<std::size_t>(n);
}

} // namespace

Aggregate aggregate(const Snapshot& s)
{
    Totals t;

    // §4 layer 1, then the sums. Python sums start from the integer 0.
    moat::Value voltage_sum{0};
    for (const SolarCharger& c : s.chargers) {
        for (auto [reading, path] : {std::pair{&c.voltage, "/Dc/0/Voltage"}, std::pair{&c.current, "/Dc/0/Current"},
                                     std::pair{&c.yield_power, "/Yield/Power"}}) {
            if (auto why = unusable(*reading))
                return Incomplete{c.service, path, std::move(*why)};
        }
        voltage_sum = py_add(voltage_sum, c.voltage.value());
        t.charger_current = py_add(t.charger_current, c.current.value());
        if (c.link_charge_current.value().is_number())
            t.charge_limit = py_add(t.charge_limit, c.link_charge_current.value());
        t.solar_power = py_add(t.solar_power, c.yield_power.value());
    }
    t.chargers = s.chargers.size();
    // Python 3's `/` always gives a float; int sums convert exactly.
    t.charger_voltage = moat::Value(*voltage_sum.as_number() / static_cast<double>(std::max<std::size_t>(t.chargers, 1)));

    std::optional<double> lowest_cv;
    for (const Battery& b : s.batteries) {
        for (auto [reading, path] :
             {std::pair{&b.voltage, "/Dc/0/Voltage"}, std::pair{&b.current, "/Dc/0/Current"},
              std::pair{&b.max_charge_current, "/Info/MaxChargeCurrent"},
              std::pair{&b.max_discharge_current, "/Info/MaxDischargeCurrent"}}) {
            if (auto why = unusable(*reading))
                return Incomplete{b.service, path, std::move(*why)};
        }
        t.battery_current = py_add(t.battery_current, b.current.value());
        t.max_charge_current = py_add(t.max_charge_current, b.max_charge_current.value());
        t.max_discharge_current = py_add(t.max_discharge_current, b.max_discharge_current.value());
        // The original keeps the last battery's value, which depends on the
        // bus's enumeration order; the lowest is deterministic and safe (§8).
        const moat::Value& cv = b.max_charge_voltage.value();
        // NaN is a number to Python but no limit.
        if (cv.is_number() && !std::isnan(*cv.as_number()) && (!lowest_cv || *cv.as_number() < *lowest_cv)) {
            lowest_cv = *cv.as_number();
            t.charge_voltage = cv;
        }
        t.charge_allowed = t.charge_allowed && py_truth(b.allow_to_charge.value());
        t.discharge_allowed = t.discharge_allowed && py_truth(b.allow_to_discharge.value());
    }

    if (!s.system)
        return Incomplete{std::string(System::service), "/Ac/ActiveIn/NumberOfPhases", "no system service"};
    const auto phases = phase_count(s.system->phase_count);
    if (const auto* why = std::get_if<std::string>(&phases))
        return Incomplete{std::string(System::service), "/Ac/ActiveIn/NumberOfPhases", *why};

    // Without a vebus service its values are None, as in the original's cache.
    static const moat::Value none;
    const Vebus* vebus = s.vebus ? &*s.vebus : nullptr;
    t.inverter_current = vebus ? vebus->dc_current.value() : none;
    const std::size_t n = std::get<std::size_t>(phases);
    t.phases.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        t.phases.push_back({vebus ? vebus->ac_power_setpoint[i].value() : none, s.system->active_in_power[i].value(),
                            vebus ? vebus->active_in_power[i].value() : none});
    }
    return t;
}

} // namespace moat::statusline
