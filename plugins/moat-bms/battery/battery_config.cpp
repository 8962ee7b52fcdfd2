#include "battery_config.hpp"

#include <cmath>
#include <sstream>

#include "config_merge.hpp"

namespace moat::bms::battery {

namespace {

const ConfigKey keys[] = {
    {"config_source", KeyType::string, "\"device\"",
     "where the battery configuration comes from: the controller's copy with `config` overlaid (device), or `config` alone (local)",
     -no_limit, no_limit, "device|local"},
    {"persist_changes", KeyType::boolean, "true", "calibration and capacity changes are stored on the controller, not only in its RAM"},
    {"config", KeyType::table, "{}", "overrides of the controller's configuration, rooted at its top (e.g. [moat-bms.config.batt.cell.u.lim])"},
    {"dc_voltage", KeyType::string, "\"cells\"", "source of /Dc/0/Voltage: the cell sum, the controller's ADC, or the cell sum times cell.u.corr",
     -no_limit, no_limit, "cells|bms|cells_corr"},
    {"enforce_temp", KeyType::boolean, "true", "block charging outside the cell temperature range, discharging 5 °C above it"},
    {"serial", KeyType::string, "\"\"", "the battery's /Serial (empty: invalid)"},
    {"device_instance", KeyType::integer, "512", "preferred device instance (class battery)", 0, 1023},
    {"stale_pack_s", KeyType::number, "5", "pack readings older than this put the battery in its safe state", 0.1, 3600},
    {"stale_cell_s", KeyType::number, "15", "a cell without a valid reading for this long puts the battery in its safe state", 0.1, 3600},
    {"work_state", KeyType::string, "\"\"", "file holding the energy record (empty: moat-bms-<app>.work in the data directory)"},
    {"work_save_s", KeyType::number, "600", "how often the energy record is saved", 1, 86400},
    {"work_max_age_s", KeyType::number, "3600", "a saved energy record older than this is not restored", 0, 1e9},
};

/// Reads the app tree, collecting one problem per bad key.
class Reader {
public:
    Reader(const msgpack::Value& tree, Parsed& out) : tree_(tree), out_(out) {}

    std::optional<double> optional(std::string_view key) {
        const msgpack::Value* v = config_at(tree_, key);
        if (!v || v->is_nil()) return std::nullopt;
        auto d = v->number();
        if (!d || !std::isfinite(*d)) {
            problem(key, "must be a finite number, not " + v->dump(40));
            return std::nullopt;
        }
        return d;
    }
    double required(std::string_view key) {
        if (!config_at(tree_, key)) problem(key, "missing (required)");
        return optional(key).value_or(0);
    }
    double with_default(std::string_view key, double dflt) { return optional(key).value_or(dflt); }

    void problem(std::string_view key, std::string reason) { out_.problems.push_back({std::string(key), std::move(reason)}); }
    const msgpack::Value& tree() const { return tree_; }

private:
    const msgpack::Value& tree_;
    Parsed& out_;
};

std::string num(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

} // namespace

std::span<const ConfigKey> option_keys() { return keys; }

Options read_options(const Config& c) {
    Options o;
    o.device_config = c.get_string("config_source") == "device";
    o.persist_changes = c.get_bool("persist_changes");
    auto dc = c.get_string("dc_voltage");
    o.dc_voltage = dc == "bms" ? DcVoltageSource::bms : dc == "cells_corr" ? DcVoltageSource::cells_corr : DcVoltageSource::cells;
    o.enforce_temp = c.get_bool("enforce_temp");
    o.serial = c.get_string("serial");
    o.device_instance = c.get_int("device_instance");
    o.stale_pack_s = c.get_number("stale_pack_s");
    o.stale_cell_s = c.get_number("stale_cell_s");
    o.work_state = c.get_string("work_state");
    o.work_save_s = c.get_number("work_save_s");
    o.work_max_age_s = c.get_number("work_max_age_s");
    return o;
}

Parsed parse_battery_config(const msgpack::Value& app_tree, const Options& options) {
    Parsed out;
    Reader r(app_tree, out);
    BatteryConfig c;

    if (const msgpack::Value* b = config_at(app_tree, "batteries"); b && b->is_array() && b->array()->size() > 1)
        r.problem("batteries", "only one battery is supported");

    double n = r.required("batt.n");
    if (n != std::floor(n) || n < 1 || n > max_cells) r.problem("batt.n", "must be a whole number from 1 to 32, not " + num(n));
    c.n = int(n);
    if (const msgpack::Value* name = config_at(app_tree, "batt.name"); name && name->str()) c.name = *name->str();

    c.t_voltage = r.with_default("t.voltage", 1);
    c.t_cellvoltage = r.with_default("t.cellvoltage", 2);
    c.t_celltemperature = r.with_default("t.celltemperature", 5);
    for (auto [key, v] : {std::pair{"t.voltage", c.t_voltage}, {"t.cellvoltage", c.t_cellvoltage}, {"t.celltemperature", c.t_celltemperature}})
        if (v <= 0) r.problem(key, "must be above 0 s");

    c.cap_ah = r.required("batt.cap.ah");
    c.cap_cur = r.required("batt.cap.cur");
    if (c.cap_cur <= 0) r.problem("batt.cap.cur", "must be above 0 W·s");
    if (auto loss = r.optional("batt.cap.loss")) {
        c.cap_loss = *loss;
    } else if (auto ploss = r.optional("batt.p.loss")) {
        c.cap_loss = *ploss;
        out.warnings.push_back("batt.cap.loss is missing; using batt.p.loss = " + num(*ploss));
    }
    if (c.cap_loss < 0 || c.cap_loss >= 1) r.problem("batt.cap.loss", "must be in [0, 1), not " + num(c.cap_loss));

    c.u_max = r.required("batt.u.max");
    c.u_min = r.required("batt.u.min");
    if (c.u_min >= c.u_max) r.problem("batt.u.min", "must be below batt.u.max");
    c.u_nom = r.optional("batt.u.nom");
    c.i_ext_max = r.required("batt.i.ext.max");
    c.i_ext_min = r.required("batt.i.ext.min");
    if (c.i_ext_max <= 0) r.problem("batt.i.ext.max", "must be above 0 A (charging is positive)");
    if (c.i_ext_min >= 0) r.problem("batt.i.ext.min", "must be below 0 A (discharging is negative)");
    c.i_max = r.optional("batt.i.max");
    c.i_min = r.optional("batt.i.min");

    auto& cell = c.cell;
    cell.u_min = r.required("cell.u.min");
    cell.u_max = r.required("cell.u.max");
    cell.ext_min = r.required("cell.u.ext.min");
    cell.ext_max = r.required("cell.u.ext.max");
    cell.lim_min = r.required("cell.u.lim.min");
    cell.lim_max = r.required("cell.u.lim.max");
    // Every formula divides by the gaps between these levels.
    if (!(cell.u_min < cell.ext_min && cell.ext_min < cell.lim_min && cell.lim_min < cell.lim_max && cell.lim_max < cell.ext_max &&
          cell.ext_max < cell.u_max))
        r.problem("cell.u", "needs u.min < u.ext.min < u.lim.min < u.lim.max < u.ext.max < u.max, got " + num(cell.u_min) + " " +
                                num(cell.ext_min) + " " + num(cell.lim_min) + " " + num(cell.lim_max) + " " + num(cell.ext_max) + " " +
                                num(cell.u_max));
    cell.range = r.with_default("cell.u.range", 0.5);
    if (cell.range <= 0 || cell.range > 1) r.problem("cell.u.range", "must be in (0, 1]");
    cell.corr = r.with_default("cell.u.corr", 1.0);
    if (cell.corr < 0.5 || cell.corr > 2) r.problem("cell.u.corr", "must be in [0.5, 2]");
    cell.decay_s = r.with_default("cell.u.decay_s", 430);
    if (cell.decay_s <= 0) r.problem("cell.u.decay_s", "must be above 0 s");
    cell.u_nom = r.optional("cell.u.nom");
    cell.temp_min = r.optional("cell.batt.min");
    cell.temp_max = r.optional("cell.batt.max");
    if (cell.temp_min && cell.temp_max && *cell.temp_min >= *cell.temp_max) r.problem("cell.batt.min", "must be below cell.batt.max");
    if (options.enforce_temp && (!cell.temp_min || !cell.temp_max))
        out.warnings.push_back("cell.batt.min/max missing: temperatures do not limit charging or discharging");

    // Optional pack operating range, by default the cells' range times n.
    if (auto v = r.optional("batt.u.ext.max")) c.u_ext_max = *v;
    else c.u_ext_max = c.n * cell.ext_max;
    if (auto v = r.optional("batt.u.ext.min")) c.u_ext_min = *v;
    else c.u_ext_min = c.n * cell.ext_min;

    c.balance.min = r.required("cell.balance.min");
    c.balance.d = r.required("cell.balance.d");
    c.balance.r = r.with_default("cell.balance.r", 0);
    double bn = r.with_default("cell.balance.n", 0);
    if (c.balance.d <= 0) r.problem("cell.balance.d", "must be above 0 V");
    if (c.balance.r < 0 || c.balance.r >= 1) r.problem("cell.balance.r", "must be in [0, 1)");
    if (bn < 0 || bn != std::floor(bn) || bn > max_cells) r.problem("cell.balance.n", "must be a whole number from 0 (any) to 32");
    c.balance.n = int(bn);

    c.poll_t_ms = r.with_default("poll.t", 250);
    if (c.poll_t_ms <= 0) r.problem("poll.t", "must be above 0 ms");
    c.poll_k_ms = r.required("poll.k");

    // Staleness must tolerate two missed polls, else a single late reply trips the safe state.
    if (options.stale_pack_s < 3 * c.t_voltage)
        r.problem("t.voltage", "stale_pack_s (" + num(options.stale_pack_s) + " s) must be at least 3 × t.voltage (" + num(c.t_voltage) + " s)");
    if (options.stale_cell_s < 3 * c.t_cellvoltage)
        r.problem("t.cellvoltage",
                  "stale_cell_s (" + num(options.stale_cell_s) + " s) must be at least 3 × t.cellvoltage (" + num(c.t_cellvoltage) + " s)");

    if (out.problems.empty()) out.config = c;
    return out;
}

namespace {
msgpack::Value from_node(const ConfigNode& n) {
    switch (n.kind()) {
    case ConfigNode::Kind::table: {
        msgpack::Map m;
        for (const auto& k : n.keys()) m.emplace_back(k, from_node(n.get(k)));
        return m;
    }
    case ConfigNode::Kind::array: {
        msgpack::Array out;
        for (std::size_t i = 0; i < n.size(); ++i) out.push_back(from_node(n.at(i)));
        return out;
    }
    case ConfigNode::Kind::integer: return static_cast<long long>(*n.as_int());
    case ConfigNode::Kind::floating: return *n.as_number();
    case ConfigNode::Kind::boolean: return *n.as_bool();
    case ConfigNode::Kind::string: return *n.as_string();
    default: return msgpack::Value();  // dates and times: nil (no such key in the controller's tree)
    }
}

/// The node at a dotted path below `n` ("batt.u.max"); empty when absent.
ConfigNode at_path(ConfigNode n, std::string_view dotted) {
    while (n && !dotted.empty()) {
        const auto dot = dotted.find('.');
        n = n.get(dotted.substr(0, dot));
        dotted = dot == std::string_view::npos ? std::string_view() : dotted.substr(dot + 1);
    }
    return n;
}
} // namespace

msgpack::Value overrides(const Config& c) {
    const ConfigNode n = c.node("config");
    return n ? from_node(n) : msgpack::Value(msgpack::Map{});
}

std::optional<Problem> check_module_count(const BatteryConfig& c, int modules_in_ring) {
    if (modules_in_ring == c.n) return std::nullopt;
    return Problem{"batt.n", "is " + std::to_string(c.n) + " but " + std::to_string(modules_in_ring) + " modules answered on the ring"};
}

void raise(const Config& c, std::string_view app, std::span<const Problem> problems) {
    std::vector<std::string> lines;
    const ConfigNode overrides = c.node("config");
    for (const Problem& p : problems) {
        std::string dotted = std::string(app) + "." + p.key;
        const ConfigNode at = at_path(overrides, dotted);
        if (at) {
            try {
                c.fail_at(at, "config." + dotted, p.reason);
            } catch (const ConfigError& e) {
                lines.push_back(e.what());
            }
        } else {
            lines.push_back(c.file() + ": [" + c.instance() + "] controller configuration key '" + dotted + "': " + p.reason);
        }
    }
    throw ConfigError(join_problems(lines));
}

} // namespace moat::bms::battery
