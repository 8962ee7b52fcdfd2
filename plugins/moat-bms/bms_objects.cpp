#include "bms_objects.hpp"

#include <cmath>

#include <fmt/format.h>

#include "balancing.hpp"
#include "calibration.hpp"
#include "config_merge.hpp"

namespace moat::bms {

using namespace battery;

namespace {

DBusError error(const char* kind, const std::string& message)
{
    return DBusError(std::string("org.m_o_a_t.bms.Error.") + kind, message);
}

/// A finite number argument, else InvalidArgument.
double finite(const Value& v, const char* what)
{
    auto d = v.as_number();
    if (!d || !std::isfinite(*d)) throw error("InvalidArgument", fmt::format("{} must be a finite number", what));
    return *d;
}

/// The controller's configuration as D-Bus values: maps as a{sv}, lists as av.
Value to_value(const msgpack::Value& m)
{
    if (const auto* map = m.map()) {
        Value::Dict d;
        for (const auto& [k, v] : *map) d[k] = to_value(v);
        return Value(std::move(d));
    }
    if (const auto* arr = m.array()) {
        Value::List l;
        for (const auto& v : *arr) l.push_back(to_value(v));
        return Value(std::move(l));
    }
    if (m.is_bool()) return Value(*m.boolean());
    if (m.is_str()) return Value(*m.str());
    if (m.is_int()) return Value(*m.integer());
    if (m.is_number()) return Value(*m.number());
    return Value(std::string());  // nil and binary: no D-Bus counterpart
}

Value work_dict(const WorkRecord& w)
{
    Value::Dict d;
    d["sum"] = w.sum, d["t"] = w.t, d["chg"] = w.chg, d["dis"] = w.dis;
    d["over_chg"] = w.over_chg, d["over_dis"] = w.over_dis, d["cfg"] = w.cfg;
    return Value(std::move(d));
}

} // namespace

BmsObjects::BmsObjects(Loop& loop, Bus& bus, BmsBattery& battery, const Config& config, Logger log)
    : loop_(loop), bus_(bus), battery_(battery), config_(config), log_(std::move(log))
{
    events_.pack = [this](const PackInfo& p) { last_pack_ = p; };
}

BmsObjects::~BmsObjects() = default;

Battery& BmsObjects::model() const
{
    Battery* m = battery_.model();
    if (!m) throw error("NotReady", "no battery configuration read from the controller yet");
    return *m;
}

LinkSession& BmsObjects::session() const
{
    if (!session_) throw error("LinkDown", "the link to the controller is down");
    return *session_;
}

double BmsObjects::key_or(const std::string& key, double fallback) const
{
    const LinkSession& s = session();
    const auto* v = config_at(s.config, s.app + "." + key);
    return v && v->number() ? *v->number() : fallback;
}

void BmsObjects::set_key(const std::string& key, double value)
{
    const LinkSession& s = session();
    // {app: {a: {b: value}}} from "a.b"
    msgpack::Value delta(value);
    std::string path = s.app + "." + key;
    for (auto dot = path.rfind('.'); dot != std::string::npos; dot = path.rfind('.')) {
        msgpack::Value up(msgpack::Map{});
        up.set(path.substr(dot + 1), std::move(delta));
        delta = std::move(up);
        path.resize(dot);
    }
    msgpack::Value top(msgpack::Map{});
    top.set(path, std::move(delta));
    battery_.write_config(std::move(top), battery_.options().persist_changes ? 1 : 0);
    log_.info("{} = {:.6g} (sent to the controller)", key, value);
}

int BmsObjects::cells() const { return battery_.model() ? battery_.model()->config().n : 0; }

void BmsObjects::publish()
{
    auto root = std::make_unique<DBusObject>(bus_, "/bms");
    add_controller(*root);
    root->publish();
    objects_.push_back(std::move(root));
    auto batt = std::make_unique<DBusObject>(bus_, "/bms/0");
    add_battery(*batt);
    batt->publish();
    objects_.push_back(std::move(batt));
    for (int i = 0; i < max_cells; ++i) {
        auto c = std::make_unique<DBusObject>(bus_, fmt::format("/bms/0/{}", i));
        add_cell(*c, i);
        c->publish();
        objects_.push_back(std::move(c));
    }
}

Value BmsObjects::voltages() const
{
    Battery& m = model();
    const Outputs& o = m.outputs();
    Value::Dict d;
    if (o.low_voltage) d["min"] = *o.low_voltage;
    if (o.max_charge_voltage) d["max"] = *o.max_charge_voltage;
    if (auto p = m.pack()) d["bms"] = p->volts;
    if (o.cells) {
        d["cells"] = o.cells->sum;
        d["min_cell"] = o.cells->min;
        d["max_cell"] = o.cells->max;
    }
    d["adj_cells"] = m.config().cell.corr;
    return Value(std::move(d));
}

Value BmsObjects::work_of(bool clear)
{
    auto w = model().get_work(clear);
    if (!w) throw error("NotReady", "no energy record yet (no cell readings)");
    return work_dict(*w);
}

void BmsObjects::add_controller(DBusObject& o)
{
    o.add_method(interface, "GetNBatteries", "", "y", [](const auto&) { return std::vector<Value>{1}; });
    o.add_method(interface, "GetVoltages", "", "aa{sd}", [this](const auto&) {
        return std::vector<Value>{Value(Value::List{voltages()})};
    });
    o.add_method(interface, "GetCurrents", "", "ad", [this](const auto&) {
        auto p = model().pack();
        if (!p) throw error("NotReady", "no pack reading yet");
        return std::vector<Value>{Value(Value::List{p->amps})};
    });
    o.add_method(interface, "GetConfig", "", "a{sv}", [this](const auto&) {
        const LinkSession& s = session();
        const auto* app = config_at(s.config, s.app);
        return std::vector<Value>{app ? to_value(*app) : Value(Value::Dict{})};
    });
    o.add_method(interface, "GetWork", "bb", "aa{sd}", [this](const std::vector<Value>& a) {
        return std::vector<Value>{Value(Value::List{work_of(a.at(1).as_bool())})};
    });
}

void BmsObjects::add_battery(DBusObject& o)
{
    o.add_method(interface, "GetVoltages", "", "a{sd}", [this](const auto&) { return std::vector<Value>{voltages()}; });
    o.add_method(interface, "GetCellVoltages", "", "ad", [this](const auto&) {
        Value::List l;
        for (const auto& v : model().cell_volts()) l.emplace_back(v ? *v : 0.0);
        return std::vector<Value>{Value(std::move(l))};
    });
    o.add_method(interface, "GetConfig", "", "a{sv}a{sv}", [this](const auto&) {
        const LinkSession& s = session();
        const auto* b = config_at(s.config, s.app + ".batt");
        const auto* c = config_at(s.config, s.app + ".cell");
        return std::vector<Value>{b ? to_value(*b) : Value(Value::Dict{}), c ? to_value(*c) : Value(Value::Dict{})};
    });
    o.add_method(interface, "GetCurrent", "", "d", [this](const auto&) {
        auto p = model().pack();
        if (!p) throw error("NotReady", "no pack reading yet");
        return std::vector<Value>{p->amps};
    });
    o.add_method(interface, "GetCurrentOffset", "", "d", [this](const auto&) {
        const LinkSession& s = session();
        const auto* v = config_at(s.config, s.app + ".batt.i.offset");
        return std::vector<Value>{v && v->number() ? *v->number() : 0.0};
    });
    o.add_method(interface, "GetSoC", "", "d", [this](const auto&) {
        auto soc = model().outputs().soc;
        if (!soc) throw error("NotReady", "no state of charge yet (no cell readings)");
        return std::vector<Value>{*soc};
    });
    o.add_method(interface, "GetNCells", "", "y", [this](const auto&) { return std::vector<Value>{model().config().n}; });
    o.add_method(interface, "GetName", "", "s", [this](const auto&) { return std::vector<Value>{model().config().name}; });
    o.add_method(interface, "GetWork", "bb", "a{sd}", [this](const std::vector<Value>& a) {
        return std::vector<Value>{work_of(a.at(1).as_bool())};
    });
    o.add_method(interface, "SetWork", "d", "b", [this](const std::vector<Value>& a) {
        const double ws = finite(a.at(0), "work");
        bool ok = false;
        battery_.with_model([&](Battery& m, TimePoint) { ok = m.set_work(ws); });
        return std::vector<Value>{ok};
    });
    o.add_method(interface, "SetCapacity", "ddb", "b", [this](const std::vector<Value>& a) {
        const double cap = finite(a.at(0), "cap"), loss = finite(a.at(1), "loss");
        bool ok = false;
        battery_.with_model([&](Battery& m, TimePoint) { ok = m.set_capacity(cap, loss, a.at(2).as_bool()); });
        if (ok) log_.info("capacity set: {:.0f} W·s, loss {:.4f}", cap, loss);
        return std::vector<Value>{ok};
    });
    o.add_method(interface, "ForceRelay", "b", "b", [this](const std::vector<Value>& a) {
        const bool on = a.at(0).as_bool();
        model();
        session();
        battery_.with_model([&](Battery& m, TimePoint now) { m.force_relay(now, on); });
        battery_.request_relay(on);
        return std::vector<Value>{true};
    });
    o.add_method(interface, "ReleaseRelay", "", "b", [this](const auto&) {
        model();
        session();
        battery_.with_model([&](Battery& m, TimePoint now) { m.release_relay(now); });
        battery_.request_relay(std::nullopt);
        log_.info("ReleaseRelay: trips cleared, the relay back to the controller");
        return std::vector<Value>{true};
    });
    // Calibration: the new value from the latest reading, sent to the controller
    // (and stored there with persist_changes); refusals as InvalidArgument.
    auto calibrate = [this](const char* key, const Calibrated& c) {
        if (const auto* why = std::get_if<std::string>(&c)) throw error("InvalidArgument", *why);
        set_key(key, std::get<double>(c));
        return std::vector<Value>{true};
    };
    o.add_method(interface, "SetVoltage", "d", "b", [this, calibrate](const std::vector<Value>& a) {
        const double ref = finite(a.at(0), "voltage");
        auto p = model().pack();
        return calibrate("batt.u.scale", calibrate_scale(key_or("batt.u.scale", 1), key_or("batt.u.offset", 0),
                                                         p ? std::optional(p->volts) : std::nullopt, ref, 1.0));
    });
    o.add_method(interface, "SetCurrent", "d", "b", [this, calibrate](const std::vector<Value>& a) {
        const double ref = finite(a.at(0), "current");
        auto p = model().pack();
        return calibrate("batt.i.scale", calibrate_scale(key_or("batt.i.scale", 1), key_or("batt.i.offset", 0),
                                                         p ? std::optional(p->amps) : std::nullopt, ref, 1.0));
    });
    o.add_method(interface, "SetCurrentOffset", "d", "b", [this](const std::vector<Value>& a) {
        const double offset = finite(a.at(0), "offset");
        session();
        set_key("batt.i.offset", offset);
        return std::vector<Value>{true};
    });
    o.add_method(interface, "SetExternalVoltage", "d", "b", [this, calibrate](const std::vector<Value>& a) {
        const double ref = finite(a.at(0), "voltage");
        auto cells = model().outputs().cells;
        return calibrate("cell.u.corr", external_correction(cells ? std::optional(cells->sum) : std::nullopt, ref));
    });
    o.add_method(interface, "GetRelayState", "", "bb", [this](const auto&) {
        session();
        if (!last_pack_) throw error("NotReady", "no pack reading yet");
        return std::vector<Value>{last_pack_->relay.on, last_pack_->relay.forced.has_value()};
    });
}

void BmsObjects::add_cell(DBusObject& o, int i)
{
    auto check = [this, i]() -> Battery& {
        Battery& m = model();
        if (i >= m.config().n) throw error("NoSuchCell", fmt::format("no cell {} (the battery has {})", i, m.config().n));
        return m;
    };
    o.add_method(interface, "GetVoltage", "", "d", [check, i](const auto&) {
        return std::vector<Value>{check().cell_volts()[std::size_t(i)].value_or(0.0)};
    });
    o.add_method(interface, "GetBalanceVoltage", "", "d", [this, check, i](const auto&) {
        check();
        return std::vector<Value>{battery_.balance_threshold[std::size_t(i)].value_or(0.0)};
    });
    o.add_method(interface, "SetBalanceVoltage", "d", "b", [this, check, i](const std::vector<Value>& a) {
        Battery& m = check();
        const double req = finite(a.at(0), "voltage");
        const auto v = m.cell_volts()[std::size_t(i)];
        if (!v) throw error("NotReady", fmt::format("cell {} has no voltage reading yet", i));
        auto mb = manual_balance(req, *v);
        if (!mb) return std::vector<Value>{false};
        battery_.balance_forced[std::size_t(i)] = mb->forced;
        if (mb->forced) battery_.balance_threshold[std::size_t(i)] = mb->threshold;
        battery_.balance_wake.set();
        return std::vector<Value>{true};
    });
    o.add_method(interface, "GetTemperature", "", "dd", [check, i](const auto&) {
        const auto& t = check().cell_temperatures()[std::size_t(i)];
        return std::vector<Value>{t.load_c.value_or(-1000.0), t.cell_c.value_or(-1000.0)};
    });
    o.add_method(interface, "GetData", "", "a{sv}", [this, check, i](const auto&) {
        Battery& m = check();
        Value::Dict d;
        if (auto v = m.cell_volts()[std::size_t(i)]) d["v"] = *v;
        const auto& t = m.cell_temperatures()[std::size_t(i)];
        if (t.load_c) d["t_int"] = *t.load_c;
        if (t.cell_c) d["t_ext"] = *t.cell_c;
        const auto pwm = battery_.balance_pwm[std::size_t(i)];
        d["balancing"] = pwm ? *pwm : (m.cell_in_balance()[std::size_t(i)] ? 0.001 : 0.0);
        return std::vector<Value>{Value(std::move(d))};
    });
    o.add_method(interface, "GetConfig", "", "v", [this, check](const auto&) {
        check();
        const LinkSession& s = session();
        const auto* c = config_at(s.config, s.app + ".cell");
        return std::vector<Value>{c ? to_value(*c) : Value(Value::Dict{})};
    });
}

} // namespace moat::bms
