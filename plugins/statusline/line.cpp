#include "line.hpp"

#include "python.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

namespace moat::statusline {

std::string voltage_delta(double d)
{
    if (!(std::fabs(d) < 1))
        return percent_f(d, 3, 1, true);
    std::string s = percent_f(d, 0, 2, true); // "+0.39", "-1.00"
    if (s[1] == '1')
        return d < 0 ? "-.99" : "+.99";
    s.erase(1, 1);
    return s;
}

namespace {

bool all_numbers(std::initializer_list<const moat::Value*> values)
{
    return std::all_of(values.begin(), values.end(), [](const moat::Value* v) { return v->is_number(); });
}

} // namespace

std::string phase_blocks(const std::vector<PhaseValues>& phases)
{
    const bool numeric = std::all_of(phases.begin(), phases.end(), [](const PhaseValues& p) {
        return all_numbers({&p.setpoint, &p.system_power, &p.vebus_power});
    });
    std::string out;
    for (const PhaseValues& p : phases) {
        if (!out.empty())
            out += ' ';
        if (numeric) {
            const double setp = *p.setpoint.as_number();
            const double curp = *p.system_power.as_number();
            const double runp = *p.vebus_power.as_number();
            out += percent_f(setp, 5, 0);
            out += ':';
            out += percent_f(setp - runp, 3, 0);
            out += '/';
            out += percent_f(curp - runp, 3, 0);
        } else {
            out += fmt::format("{}:{}/{}", py_str(p.setpoint), py_str(p.system_power), py_str(p.vebus_power));
        }
    }
    return out;
}

std::string format_line(const Totals& t)
{
    const std::string phases = phase_blocks(t.phases);
    if (!all_numbers({&t.charger_voltage, &t.charge_voltage, &t.solar_power, &t.charger_current, &t.charge_limit,
                      &t.battery_current, &t.max_discharge_current, &t.max_charge_current, &t.inverter_current})) {
        return single_line(fmt::format("U={} {}  Sol I={} {} {}  Bat I={} {} {}  Inv I={} P={}",
                                       py_str(t.charger_voltage), py_str(t.charge_voltage), py_str(t.charger_current),
                                       py_str(t.charge_limit), py_str(t.solar_power), py_str(t.battery_current),
                                       py_str(t.max_charge_current), py_str(t.max_discharge_current),
                                       py_str(t.inverter_current), phases));
    }
    const double cvol = *t.charger_voltage.as_number();
    return fmt::format("{}{}V  Sol {}W {}A <{}  Bat {}A {}{}{}{}  Inv {}A {}", percent_f(cvol, 5, 2),
                       voltage_delta(*t.charge_voltage.as_number() - cvol), percent_f(*t.solar_power.as_number(), 5, 0),
                       percent_f(*t.charger_current.as_number(), 5, 1), percent_f(*t.charge_limit.as_number(), 3, 0),
                       percent_f(*t.battery_current.as_number(), 5, 1),
                       t.discharge_allowed ? discharge_allowed_glyph : discharge_blocked_glyph,
                       // An integer 0 (no battery) negates to 0 and prints "0.0"; a double 0.0 prints "-0.0".
                       percent_f(*py_neg(t.max_discharge_current).as_number(), 5, 1),
                       t.charge_allowed ? charge_allowed_glyph : charge_blocked_glyph,
                       percent_f(*t.max_charge_current.as_number(), 5, 1),
                       percent_f(*t.inverter_current.as_number(), 5, 1), single_line(phases));
}

std::string single_line(std::string text)
{
    for (char& c : text)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
    return text;
}

std::string format_line(const Aggregate& aggregate)
{
    if (const auto* totals = std::get_if<Totals>(&aggregate))
        return format_line(*totals);
    return std::string(incomplete_line);
}

std::string status_line(const Snapshot& snapshot)
{
    return format_line(aggregate(snapshot));
}

} // namespace moat::statusline
