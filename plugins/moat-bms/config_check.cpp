#include "config_check.hpp"

#include <cmath>

#include <fmt/format.h>

#include "battery_config.hpp"
#include "config_merge.hpp"

namespace moat::bms {

using namespace battery;

namespace {

/// Every leaf of an override must be a finite number, a boolean or a string.
void check_leaves(const Config& c, const ConfigNode& n, const std::string& key)
{
    if (n.kind() == ConfigNode::Kind::table) {
        for (const auto& k : n.keys()) check_leaves(c, n.get(k), key + "." + k);
        return;
    }
    if (n.kind() == ConfigNode::Kind::floating && !std::isfinite(*n.as_number()))
        c.fail_at(n, key, "must be a finite number");
    if (n.kind() != ConfigNode::Kind::integer && n.kind() != ConfigNode::Kind::floating &&
        n.kind() != ConfigNode::Kind::boolean && n.kind() != ConfigNode::Kind::string && n.kind() != ConfigNode::Kind::array)
        c.fail_at(n, key, "must be a number, a boolean, a string or a list");
}

double override_or(const msgpack::Value& over, const std::string& dotted, double fallback)
{
    const auto* v = config_at(over, dotted);
    return v && v->number() ? *v->number() : fallback;
}

} // namespace

void validate_battery_keys(const Config& c)
{
    const Options o = read_options(c);
    const std::string app = c.get_string("app");
    if (const ConfigNode n = c.node("config")) check_leaves(c, n, "config");
    const msgpack::Value over = overrides(c);
    if (!o.device_config) {
        // The overrides are the whole configuration: check all of it.
        const auto* tree = config_at(over, app);
        Parsed p = parse_battery_config(tree ? *tree : msgpack::Value(msgpack::Map{}), o);
        if (!p.problems.empty()) raise(c, app, p.problems);
        return;
    }
    // The controller's copy is not known here: the staleness limits against
    // the overridden poll intervals or the controller's defaults.
    const double t_voltage = override_or(over, app + ".t.voltage", 1), t_cell = override_or(over, app + ".t.cellvoltage", 2);
    if (o.stale_pack_s < 3 * t_voltage)
        c.fail("stale_pack_s", fmt::format("{} s is below 3 × t.voltage ({} s): one late reply would put the battery in its safe state",
                                           o.stale_pack_s, t_voltage));
    if (o.stale_cell_s < 3 * t_cell)
        c.fail("stale_cell_s", fmt::format("{} s is below 3 × t.cellvoltage ({} s): one late read would put the battery in its safe state",
                                           o.stale_cell_s, t_cell));
}

} // namespace moat::bms
