#include "bms_objects.hpp"

#include <cmath>

#include <fmt/format.h>

#include "bms_object_support.hpp"
#include "calibration.hpp"
#include "config_merge.hpp"

namespace moat::bms {

using namespace battery;
using Results = std::vector<Value>;

DBusError bms_error(const char* kind, const std::string& message)
{
    return DBusError(std::string("org.m_o_a_t.bms.Error.") + kind, message);
}

double finite_argument(const Value& v, const char* what)
{
    auto d = v.as_number();
    if (!d || !std::isfinite(*d)) throw bms_error("InvalidArgument", fmt::format("{} must be a finite number", what));
    return *d;
}

Value config_value(const msgpack::Value& m)
{
    if (const auto* map = m.map()) {
        Value::Dict d;
        for (const auto& [k, v] : *map) d[k] = config_value(v);
        return Value(std::move(d));
    }
    if (const auto* arr = m.array()) {
        Value::List l;
        for (const auto& v : *arr) l.push_back(config_value(v));
        return Value(std::move(l));
    }
    if (m.is_bool()) return Value(*m.boolean());
    if (m.is_str()) return Value(*m.str());
    if (m.is_int()) return Value(*m.integer());
    if (m.is_number()) return Value(*m.number());
    return Value(std::string());  // nil and binary: no D-Bus counterpart
}

namespace {

Value work_dict(const WorkRecord& w)
{
    Value::Dict d;
    d["sum"] = w.sum, d["t"] = w.t, d["chg"] = w.chg, d["dis"] = w.dis;
    d["over_chg"] = w.over_chg, d["over_dis"] = w.over_dis, d["cfg"] = w.cfg;
    return Value(std::move(d));
}

std::string seconds_text(Duration d) { return fmt::format("{:.3g} s", std::chrono::duration<double>(d).count()); }

} // namespace

/// A live call waiting for, or running in, the session.
struct BmsObjects::LiveCall {
    LiveOp op;
    Duration bound{};
    Event done;
    std::exception_ptr error;
};

BmsObjects::BmsObjects(Loop& loop, Bus& bus, BmsBattery& battery, const Config& config, Logger log)
    : loop_(loop), bus_(bus), battery_(battery), config_(config), log_(std::move(log))
{
    events_.pack = [this](const PackInfo& p) {
        last_pack_ = p;
        emit_pack(p);
    };
    events_.cells = [this](bool changed) {
        if (changed) emit_cells();
    };
    events_.temperatures = [this](bool changed) {
        if (changed) emit_temperatures();
    };
}

BmsObjects::~BmsObjects() { *alive_ = false; }

Battery& BmsObjects::model() const
{
    Battery* m = battery_.model();
    if (!m) throw bms_error("NotReady", "no battery configuration read from the controller yet");
    return *m;
}

Battery& BmsObjects::cell_model(int i) const
{
    Battery& m = model();
    if (i >= m.config().n) throw bms_error("NoSuchCell", fmt::format("no cell {} (the battery has {})", i, m.config().n));
    return m;
}

LinkSession& BmsObjects::session() const
{
    if (!session_) throw bms_error("LinkDown", "the link to the controller is down");
    return *session_;
}

void BmsObjects::set_session(LinkSession* s)
{
    session_ = s;
    if (s) return;
    // Calls not started yet: the session that would run them is gone.
    auto queued = std::move(live_calls_);
    live_calls_.clear();
    for (auto& c : queued) {
        c->error = std::make_exception_ptr(bms_error("LinkDown", "the link to the controller went down"));
        c->done.set();
    }
}

Task<void> BmsObjects::serve(LinkSession& s)
{
    auto body = [this, &s](TaskGroup& g) -> Task<void> {
        for (;;) {
            while (!live_calls_.empty()) {
                auto c = std::move(live_calls_.front());
                live_calls_.pop_front();
                g.spawn(run_live(s, std::move(c)), "moat-bms live call");
            }
            live_wake_.clear();
            co_await live_wake_.wait();
        }
    };
    co_await with_group(body);
}

Task<void> BmsObjects::run_live(LinkSession& s, std::shared_ptr<LiveCall> c)
{
    // A failing call fails only itself, never the session.
    try {
        auto t = with_timeout(c->bound, c->op(s));
        co_await t;
    } catch (const TimeoutError&) {
        c->error = std::make_exception_ptr(
            bms_error("Timeout", fmt::format("no answer from the controller within {}", seconds_text(c->bound))));
    } catch (const Cancelled&) {
        c->error = std::make_exception_ptr(bms_error("LinkDown", "the link went down during the call"));
        c->done.set();
        throw;
    } catch (const RpcTimeout& e) {
        c->error = std::make_exception_ptr(bms_error("Timeout", e.what()));
    } catch (const LinkError& e) {
        c->error = std::make_exception_ptr(bms_error("LinkDown", e.what()));
    } catch (const cell::CellError& e) {
        c->error = std::make_exception_ptr(bms_error("Timeout", fmt::format("the cell ring: {}", e.what())));
    } catch (const DBusError&) {
        c->error = std::current_exception();
    } catch (const std::exception& e) {
        c->error = std::make_exception_ptr(bms_error("Internal", e.what()));
    }
    c->done.set();
}

Task<void> BmsObjects::live(LiveOp op, Duration bound)
{
    session();  // LinkDown now
    auto c = std::make_shared<LiveCall>();
    c->op = std::move(op);
    c->bound = bound;
    live_calls_.push_back(c);
    live_wake_.set();
    auto alive = alive_;
    co_await c->done.wait();
    if (!*alive) throw Cancelled();
    if (c->error) std::rethrow_exception(c->error);
}

double BmsObjects::key_or(const std::string& key, double fallback) const
{
    const LinkSession& s = session();
    const auto* v = config_at(s.config, s.app + "." + key);
    return v && v->number() ? *v->number() : fallback;
}

void BmsObjects::set_keys(const std::vector<std::pair<std::string, double>>& keys)
{
    const LinkSession& s = session();
    msgpack::Value top(msgpack::Map{});
    std::string text;
    for (const auto& [key, value] : keys) {
        merge_config(top, config_delta(s.app + "." + key, msgpack::Value(value)));  // all keys in one delta
        text += fmt::format("{}{} = {:.6g}", text.empty() ? "" : ", ", key, value);
    }
    battery_.write_config(std::move(top), battery_.options().persist_changes ? 1 : 0);
    log_.info("{} (sent to the controller)", text);
}

double BmsObjects::cell_offset(int i) const
{
    return key_or("cell.u.offset", 0) + battery_.cell_offset[std::size_t(i)];
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
    add_battery_live(*batt);
    batt->publish();
    battery_object_ = batt.get();
    objects_.push_back(std::move(batt));
    for (int i = 0; i < max_cells; ++i) {
        auto c = std::make_unique<DBusObject>(bus_, fmt::format("/bms/0/{}", i));
        add_cell(*c, i);
        add_cell_live(*c, i);
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

Task<Value> BmsObjects::work(bool poll, bool clear)
{
    model();
    if (poll) {
        // The controller returns and zeroes its energy sums: they go into the record first.
        auto sums = std::make_shared<WorkSums>();
        auto op = [sums](LinkSession& s) -> Task<void> {
            auto call = s.client.info(-1, true, s.info_timeout);
            PackInfo p = co_await call;
            *sums = p.work;
        };
        auto t = live(op, rpc_bound);
        co_await t;
        battery_.with_model([&](Battery& m, TimePoint) {
            const double tick_s = m.config().poll_t_ms / 1000.0;
            m.on_work(sums->sum * tick_s, double(sums->ticks) * tick_s);
        });
    }
    auto w = model().get_work(clear);
    if (!w) throw bms_error("NotReady", "no energy record yet (no cell readings)");
    co_return work_dict(*w);
}

void BmsObjects::add_controller(DBusObject& o)
{
    o.add_method(interface, "GetNBatteries", "", "y", [](const auto&) { return Results{1}; });
    o.add_method(interface, "GetVoltages", "", "aa{sd}", [this](const auto&) {
        return Results{Value(Value::List{voltages()})};
    });
    o.add_method(interface, "GetCurrents", "", "ad", [this](const auto&) {
        auto p = model().pack();
        if (!p) throw bms_error("NotReady", "no pack reading yet");
        return Results{Value(Value::List{p->amps})};
    });
    o.add_method(interface, "GetConfig", "", "a{sv}", [this](const auto&) {
        const LinkSession& s = session();
        const auto* app = config_at(s.config, s.app);
        return Results{app ? config_value(*app) : Value(Value::Dict{})};
    });
    o.add_async_method(interface, "GetWork", "bb", "aa{sd}", [this](Results a) -> Task<Results> {
        auto t = work(a.at(0).as_bool(), a.at(1).as_bool());
        Value w = co_await t;
        co_return Results{Value(Value::List{std::move(w)})};
    });
    o.name_arguments(interface, "GetWork", {"poll", "clear"});
}

void BmsObjects::add_battery(DBusObject& o)
{
    o.add_method(interface, "GetVoltages", "", "a{sd}", [this](const auto&) { return Results{voltages()}; });
    o.add_method(interface, "GetCellVoltages", "", "ad", [this](const auto&) {
        Value::List l;
        for (const auto& v : model().cell_volts()) l.emplace_back(v ? *v : 0.0);
        return Results{Value(std::move(l))};
    });
    o.add_method(interface, "GetBalancing", "", "a(dbdb)", [this](const auto&) {
        Battery& m = model();
        Value::List l;
        for (int i = 0; i < m.config().n; ++i) {
            const auto k = std::size_t(i);
            l.emplace_back(Value::List{battery_.balance_threshold[k].value_or(0.0), bool(m.cell_in_balance()[k]),
                                       battery_.balance_pwm[k].value_or(-1.0), bool(battery_.balance_forced[k])});
        }
        return Results{Value(std::move(l))};
    });
    o.add_method(interface, "GetTemperatures", "", "a(dd)", [this](const auto&) {
        Value::List l;
        for (const auto& t : model().cell_temperatures())
            l.emplace_back(Value::List{t.load_c.value_or(-1000.0), t.cell_c.value_or(-1000.0)});
        return Results{Value(std::move(l))};
    });
    o.add_method(interface, "GetConfig", "", "a{sv}a{sv}", [this](const auto&) {
        const LinkSession& s = session();
        const auto* b = config_at(s.config, s.app + ".batt");
        const auto* c = config_at(s.config, s.app + ".cell");
        return Results{b ? config_value(*b) : Value(Value::Dict{}), c ? config_value(*c) : Value(Value::Dict{})};
    });
    o.add_method(interface, "GetCurrent", "", "d", [this](const auto&) {
        auto p = model().pack();
        if (!p) throw bms_error("NotReady", "no pack reading yet");
        return Results{p->amps};
    });
    o.add_method(interface, "GetCurrentOffset", "", "d", [this](const auto&) {
        const LinkSession& s = session();
        const auto* v = config_at(s.config, s.app + ".batt.i.offset");
        return Results{v && v->number() ? *v->number() : 0.0};
    });
    o.add_method(interface, "GetSoC", "", "d", [this](const auto&) {
        auto soc = model().outputs().soc;
        if (!soc) throw bms_error("NotReady", "no state of charge yet (no cell readings)");
        return Results{*soc};
    });
    o.add_method(interface, "GetNCells", "", "y", [this](const auto&) { return Results{model().config().n}; });
    o.add_method(interface, "GetName", "", "s", [this](const auto&) { return Results{model().config().name}; });
    o.add_method(interface, "SetWork", "d", "b", [this](const Results& a) {
        const double ws = finite_argument(a.at(0), "work");
        model();
        bool ok = false;
        battery_.with_model([&](Battery& m, TimePoint) { ok = m.set_work(ws); });
        return Results{ok};
    });
    o.name_arguments(interface, "SetWork", {"work"});
    o.add_method(interface, "SetCapacity", "ddb", "b", [this](const Results& a) {
        const double cap = finite_argument(a.at(0), "cap"), loss = finite_argument(a.at(1), "loss");
        model();
        session();  // the controller keeps batt.cap: no change it cannot have
        bool ok = false;
        battery_.with_model([&](Battery& m, TimePoint) { ok = m.set_capacity(cap, loss, a.at(2).as_bool()); });
        if (ok) set_keys({{"batt.cap.cur", cap}, {"batt.cap.loss", loss}});
        return Results{ok};
    });
    o.name_arguments(interface, "SetCapacity", {"cap", "loss", "top"});
    o.add_method(interface, "ForceRelay", "b", "b", [this](const Results& a) {
        const bool on = a.at(0).as_bool();
        model();
        session();
        battery_.with_model([&](Battery& m, TimePoint now) { m.force_relay(now, on); });
        battery_.request_relay(on);
        return Results{true};
    });
    o.name_arguments(interface, "ForceRelay", {"on"});
    o.add_method(interface, "ReleaseRelay", "", "b", [this](const auto&) {
        model();
        session();
        battery_.with_model([&](Battery& m, TimePoint now) { m.release_relay(now); });
        battery_.request_relay(std::nullopt);
        log_.info("ReleaseRelay: trips cleared, the relay back to the controller");
        return Results{true};
    });
    // Calibration: the new value from the latest reading, sent to the controller
    // (and stored there with persist_changes); refusals as InvalidArgument.
    auto calibrate = [this](const char* key, const Calibrated& c) {
        if (const auto* why = std::get_if<std::string>(&c)) throw bms_error("InvalidArgument", *why);
        set_keys({{key, std::get<double>(c)}});
        return Results{true};
    };
    o.add_method(interface, "SetVoltage", "d", "b", [this, calibrate](const Results& a) {
        const double ref = finite_argument(a.at(0), "voltage");
        auto p = model().pack();
        return calibrate("batt.u.scale", calibrate_scale(key_or("batt.u.scale", 1), key_or("batt.u.offset", 0),
                                                         p ? std::optional(p->volts) : std::nullopt, ref, 1.0));
    });
    o.add_method(interface, "SetCurrent", "d", "b", [this, calibrate](const Results& a) {
        const double ref = finite_argument(a.at(0), "current");
        auto p = model().pack();
        return calibrate("batt.i.scale", calibrate_scale(key_or("batt.i.scale", 1), key_or("batt.i.offset", 0),
                                                         p ? std::optional(p->amps) : std::nullopt, ref, 1.0));
    });
    o.add_method(interface, "SetCurrentOffset", "d", "b", [this](const Results& a) {
        const double offset = finite_argument(a.at(0), "offset");
        set_keys({{"batt.i.offset", offset}});
        return Results{true};
    });
    o.add_method(interface, "SetExternalVoltage", "d", "b", [this, calibrate](const Results& a) {
        const double ref = finite_argument(a.at(0), "voltage");
        auto cells = model().outputs().cells;
        return calibrate("cell.u.corr", external_correction(cells ? std::optional(cells->sum) : std::nullopt, ref));
    });
    o.add_signal(interface, "VoltageChanged", "ddbb");
    o.add_signal(interface, "CellVoltageChanged", "a(db)");
    o.add_signal(interface, "CellTemperatureChanged", "a(vv)");
}

void BmsObjects::add_battery_live(DBusObject& o)
{
    o.add_async_method(interface, "GetWork", "bb", "a{sd}", [this](Results a) -> Task<Results> {
        auto t = work(a.at(0).as_bool(), a.at(1).as_bool());
        Value w = co_await t;
        co_return Results{std::move(w)};
    });
    o.name_arguments(interface, "GetWork", {"poll", "clear"});
    o.add_async_method(interface, "GetRelayState", "", "bb", [this](Results) -> Task<Results> {
        auto state = std::make_shared<RelayState>();
        auto op = [state](LinkSession& s) -> Task<void> {
            auto call = s.client.relay();
            *state = co_await call;
        };
        auto t = live(op, rpc_bound);
        co_await t;
        co_return Results{state->on, state->forced.has_value()};
    });
    o.add_async_method(interface, "Identify", "", "b", [this](Results) -> Task<Results> {
        const int n = model().config().n;
        auto seen = std::make_shared<bool>(false);
        auto op = [seen, n](LinkSession& s) -> Task<void> {
            try {
                auto call = s.cells.request(cell::CellRequest{.command = cell::Command::identify, .start = 0, .count = n,
                                                              .records = {}});
                co_await call;
                *seen = true;
            } catch (const cell::CellError& e) {
                if (e.kind() != cell::CellErrorKind::no_such_cell && e.kind() != cell::CellErrorKind::short_reply) throw;
            }
        };
        auto t = live(op, ring_bound);
        co_await t;
        co_return Results{*seen};
    });
}

void BmsObjects::emit_pack(const PackInfo& p)
{
    const Battery* m = battery_.model();
    if (!battery_object_ || !m) return;
    try {
        battery_object_->emit_signal(interface, "VoltageChanged",
                                     {p.u, p.i, m->outputs().allow_charge, m->outputs().allow_discharge});
    } catch (const std::exception& e) {
        log_.warning("VoltageChanged not sent: {}", e.what());
    }
}

void BmsObjects::emit_cells()
{
    const Battery* m = battery_.model();
    if (!battery_object_ || !m) return;
    Value::List l;
    for (int i = 0; i < m->config().n; ++i)
        l.emplace_back(Value::List{m->cell_volts()[std::size_t(i)].value_or(0.0), bool(m->cell_in_balance()[std::size_t(i)])});
    try {
        battery_object_->emit_signal(interface, "CellVoltageChanged", {Value(std::move(l))});
    } catch (const std::exception& e) {
        log_.warning("CellVoltageChanged not sent: {}", e.what());
    }
}

void BmsObjects::emit_temperatures()
{
    const Battery* m = battery_.model();
    if (!battery_object_ || !m) return;
    // Each value a variant: a number, or false when unknown.
    auto v = [](const std::optional<double>& c) { return c ? Value(*c) : Value(false); };
    Value::List l;
    for (const auto& t : m->cell_temperatures()) l.emplace_back(Value::List{v(t.load_c), v(t.cell_c)});
    try {
        battery_object_->emit_signal(interface, "CellTemperatureChanged", {Value(std::move(l))});
    } catch (const std::exception& e) {
        log_.warning("CellTemperatureChanged not sent: {}", e.what());
    }
}

} // namespace moat::bms
