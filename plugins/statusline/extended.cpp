#include "extended.hpp"
#include "line.hpp"

#include "python.hpp"

#include <fmt/format.h>

namespace moat::statusline {

std::optional<LineFormat> parse_line_format(std::string_view name)
{
    if (name == "original")
        return LineFormat::original;
    if (name == "extended")
        return LineFormat::extended;
    return std::nullopt;
}

std::string grid_part(const Snapshot& s)
{
    if (!s.system)
        return "Grid ---";
    std::string phases;
    double total = 0;
    bool any = false;
    for (const Reading& r : s.system->grid_power) {
        if (r.state() == Reading::State::missing)
            continue;  // a phase the system does not have
        auto v = r.value().as_number();
        if (!phases.empty())
            phases += '/';
        if (v && r.value().is_number()) {
            phases += percent_f(*v, 0, 0);
            total += *v;
            any = true;
        } else {
            phases += "---";
        }
    }
    if (phases.empty())
        return "Grid ---";
    return fmt::format("Grid {}W ({})", any ? percent_f(total, 5, 0) : "  ---", phases);
}

std::string controller_part(const Snapshot& s)
{
    if (!s.controller)
        return {};
    const Controller& c = *s.controller;
    const moat::Value& mode = c.mode.value();
    if (!mode.is_string())
        return "controller ---";
    const std::string m = single_line(mode.as_string());  // a string from the bus
    auto with = [&](const Reading& r, int decimals, std::string_view unit) {
        auto v = r.value().as_number();
        if (!v || !r.value().is_number())
            return m;
        return fmt::format("{} {}{}", m, percent_f(*v, 0, decimals), unit);
    };
    if (m == "p_grid" || m == "p_inv")
        return with(c.power, 0, "W");
    if (m == "i_batt")
        return with(c.current, 1, "A");
    if (m == "soc")
        return with(c.dest_soc, 2, "");
    return m;
}

std::string extend_line(const std::string& line, const Snapshot& s)
{
    std::string out = line + "  " + grid_part(s);
    if (auto c = controller_part(s); !c.empty())
        out += "  " + c;
    return out;
}

} // namespace moat::statusline
