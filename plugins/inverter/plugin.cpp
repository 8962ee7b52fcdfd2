// The inverter plugin: the I/O shell around inverter-logic (inverter-control.md
// §3, §4, §12-§18). Reads the system, vebus, battery and settings services
// through the shared monitor, runs one mode at a time under a supervisor and
// writes /Hub4/L<n>/AcPowerSetpoint through the setpoint writer; the exports
// are in plugin_export.cpp; analyze talks to the MoaT BMS through bms_client.hpp.
#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "bms_client.hpp"
#include "control_interface.hpp"
#include "inverter_plugin.hpp"

namespace moat::inverter {
namespace {

using namespace std::chrono_literals;

// ---------------------------------------------------------------- config keys

const ConfigKey io_keys[] = {
    {"name", KeyType::string, "\"\"", "control bus name suffix: org.m_o_a_t.inv.<name>; \"\" = main (fake in fake mode)"},
    {"fake", KeyType::boolean, "false", "compute and log, never write to the Multi (NO-OP SET lines)"},
    {"venus_service", KeyType::string, "\"\"",
     "bus name of the Venus items (/Mode, /Power, ...); \"\" = com.victronenergy.moatinv.<name>"},
    {"input_timeout", KeyType::number, "10", "s: a required input invalid or a service silent this long stops the loop until the inputs are back", 0.05, 3600},
    {"mode_lockout", KeyType::number, "30", "s: after a mode started, changes to another mode are refused this long", 0, 3600},
    {"refresh_interval", KeyType::number, "5", "s: the setpoints are re-written at least this often (<= 10)", 0.05, 10},
    {"trigger_sleep", KeyType::number, "3", "s: the settle loop's sleep before waiting for the Multi", 0, 60},
    {"trigger_wait", KeyType::number, "5", "s: the settle loop's longest wait for a change of /Ac/ActiveIn/P", 0.01, 60},
    {"idle_sleep", KeyType::number, "20", "s: the idle mode's sleep between writes", 0, 600},
    {"stop_write_timeout", KeyType::number, "2", "s: bound of the safe-setpoint write on stop", 0.1, 10},
    {"bms_service", KeyType::string, "\"\"",
     "battery service with the MoaT BMS (org.m_o_a_t.bms) for analyze; \"\" = the battery service the system "
     "service names (/Dc/Battery/BatteryService)"},
    {"low_battery_hold", KeyType::number, "60",
     "s: a low battery counts as recovered after this long without a low reading; off and idle then restart", 0,
     3600},
};

const std::vector<ConfigKey> all_keys = [] {
    std::vector<ConfigKey> v(config_keys.begin(), config_keys.end());
    v.insert(v.end(), std::begin(io_keys), std::end(io_keys));
    return v;
}();

} // namespace

Mode start_mode(const Config& config) {
    auto start = parse_mode(config.get_string("mode"));
    if (!start) config.fail("mode", "unknown mode");  // (the key's choices make this unreachable)
    return *start;
}

/// The suffix of org.m_o_a_t.inv.<name>.
std::string control_suffix(const Config& config) {
    std::string name = config.get_string("name");
    if (name.empty()) name = config.get_bool("fake") ? "fake" : "main";
    return name;
}

std::string venus_service_name(const Config& config) {
    std::string venus = config.get_string("venus_service");
    return venus.empty() ? "com.victronenergy.moatinv." + control_suffix(config) : venus;
}


InverterPlugin::InverterPlugin(Context& ctx)
    : ctx_(ctx), sp_(system_params(ctx.config)), ctl_(sp_),
      refresh_(seconds(ctx.config.get_number("refresh_interval"))),
      trigger_sleep_(seconds(ctx.config.get_number("trigger_sleep"))),
      trigger_wait_(seconds(ctx.config.get_number("trigger_wait"))),
      idle_sleep_(seconds(ctx.config.get_number("idle_sleep"))),
      sup_(*this, ctx.loop.clock(), ctx.log, seconds(ctx.config.get_number("mode_lockout")), start_mode(ctx.config),
           mode_defaults(ctx.config)),
      watch_(sup_, ctx.loop.clock(), ctx.log,
             SafetyTiming{seconds(ctx.config.get_number("input_timeout")),
                          seconds(ctx.config.get_number("low_battery_hold"))},
             sp_),
      writer_(*this, ctx.loop.clock(), ctx.log, ctx.config.get_bool("fake"),
              seconds(ctx.config.get_number("stop_write_timeout"))) {
    name_ = control_suffix(ctx.config);
    bms_service_ = ctx.config.get_string("bms_service");
}

std::string InverterPlugin::string_at(const std::string& service, const std::string& path) {
    Value v = ctx_.monitor.value(service, path);
    return v.is_string() ? v.as_string() : std::string();
}

std::string InverterPlugin::battery() {
    // systemcalc gives the service name; accept "class/instance" too.
    std::string b = string_at(system_service, "/Dc/Battery/BatteryService");
    if (auto slash = b.find('/'); slash != std::string::npos) {
        std::string cls = b.substr(0, slash);
        char* end = nullptr;
        long inst = std::strtol(b.c_str() + slash + 1, &end, 10);
        ctx_.monitor.watch(cls);
        auto s = ctx_.monitor.find_by_instance(cls, inst);
        return s ? s->name : std::string();
    }
    if (!b.empty()) ctx_.monitor.watch(service_class(b));
    return b;
}

Readings InverterPlugin::readings() {
    Readings r;
    const std::string sys = system_service, vb = vebus(), bat = battery();
    r.n_phase = num(sys, "/Ac/ActiveIn/NumberOfPhases");  // check_readings checks it before it is an int
    r.pv_current = num(sys, "/Dc/Pv/Current");
    r.battery_voltage = num(sys, "/Dc/Battery/Voltage");
    r.battery_current = num(sys, "/Dc/Battery/Current");
    r.vebus_current = num(sys, "/Dc/Vebus/Current");
    r.soc_percent = num(sys, "/Dc/Battery/Soc");
    for (int k = 0; k < max_phases; ++k) {
        r.consumption[k] = num(sys, fmt::format("/Ac/Consumption/L{}/Power", k + 1));
        r.grid[k] = num(sys, fmt::format("/Ac/Grid/L{}/Power", k + 1));
        r.consumption_on_output[k] = num(sys, fmt::format("/Ac/ConsumptionOnOutput/L{}/Power", k + 1));
        r.hub4_setpoint[k] = num(vb, fmt::format("/Hub4/L{}/AcPowerSetpoint", k + 1));
        r.ac_in_power[k] = num(vb, fmt::format("/Ac/ActiveIn/L{}/P", k + 1));
    }
    r.low_voltage = num(bat, "/Info/BatteryLowVoltage");
    r.max_charge_voltage = num(bat, "/Info/MaxChargeVoltage");
    r.max_charge_current = num(bat, "/Info/MaxChargeCurrent");
    r.max_discharge_current = num(bat, "/Info/MaxDischargeCurrent");
    if (auto v = num(bat, "/Io/AllowToCharge")) r.allow_to_charge = *v != 0;
    if (auto v = num(bat, "/Io/AllowToDischarge")) r.allow_to_discharge = *v != 0;
    r.capacity = num(bat, "/Capacity");
    return r;
}

SafetyReading InverterPlugin::safety_reading() {
    SafetyReading r;
    GuardInput& g = r.guard;
    r.vebus = vebus();
    r.battery = battery();
    g.vebus_present = present(r.vebus);
    g.system_present = present(system_service);
    g.vebus_name = r.vebus;
    g.battery_present = present(r.battery);
    auto check = check_readings(readings(), sp_.r_int);
    g.problems = check.problems;
    r.inputs = check.inputs;
    g.hub4_mode = hub4_mode();
    g.assistant_id = num(r.vebus, "/Hub4/AssistantId");
    r.overvoltage_feed_in = feed_in();
    // Before the first cycle of a mode there is no report: its predecessor's setpoints may still stand.
    r.may_be_inverting = !report_ || std::any_of(report_->inv_phases.begin(), report_->inv_phases.end(),
                                                 [](double p) { return p > 0; });
    r.capacity_test = ctl_.capacity_test;
    return r;
}

Task<Inputs> InverterPlugin::inputs() {
    for (;;) {
        auto check = check_readings(readings(), sp_.r_int);
        if (check.inputs && present(vebus()) && present(battery())) {
            last_n_phase_ = check.inputs->n_phase;
            co_return *check.inputs;
        }
        co_await sleep_for(100ms);
    }
}

int InverterPlugin::n_phase() {
    auto n = num(system_service, "/Ac/ActiveIn/NumberOfPhases");
    if (n && *n >= 1 && *n <= 3) return static_cast<int>(*n);
    if (last_n_phase_ >= 1) return last_n_phase_;
    return static_cast<int>(std::max<std::size_t>(1, writer_.last_written().size()));
}

// ---------------------------------------------------------------- output

Task<void> InverterPlugin::write_safe(const char* why) {
    auto sp = watch_.safe_setpoints(n_phase());  // never discharging a low battery (§18.5)
    ctx_.log.info("safe setpoints ({})", why);
    co_await writer_.write_safe(std::move(sp));
}

Task<void> InverterPlugin::safe_state() {
    // §18.1: shielded by the host; each phase's write is bounded by stop_write_timeout.
    co_await write_safe("stop");
    const std::string& st = writer_.safe_state();
    if (st != "reached") throw SafeStateNotReached(st.substr(std::string_view("not reached: ").size()));
}

// ---------------------------------------------------------------- settle loop (§12)

Task<void> InverterPlugin::trigger(Duration sleep) {
    co_await sleep_for(sleep);
    const std::string vb = vebus();
    if (vb.empty()) co_return;
    auto w = ctx_.monitor.wait_for_change(vb, "/Ac/ActiveIn/P", trigger_wait_);
    co_await w;
}

void InverterPlugin::record(const Cycle& c) {
    for (auto& e : c.report.limits) ctx_.log.debug("{}", describe(e));
    report_ = c.report;
}

void InverterPlugin::soc_report(const SocReport& r) {
    Value::Dict d{{"now", r.now}, {"dest", r.dest}, {"delta", r.delta}, {"power", param_to_value(r.power)}};
    mode_report_key_ = "to_soc";
    mode_report_ = Value(std::move(d));
}

void InverterPlugin::analyze_report(const Value::Dict& r) {
    auto step = [](const std::optional<Value::Dict>& d) -> std::string {
        if (!d) return {};
        auto it = d->find("step");
        return it != d->end() ? text(it->second) : std::string();
    };
    const std::string before = step(analyze_report_);
    analyze_report_ = r;
    const std::string now = step(analyze_report_);
    if (now == "result") ctx_.log.info("analyze: {}", Value(r));
    else if (!now.empty() && now != before) ctx_.log.info("analyze: step {} {}", now, Value(r));
    else ctx_.log.debug("analyze: {}", Value(r));
    sync_items();
}

void InverterPlugin::remote_report(const RemoteReport& rr) {
    Value::Dict d{{"mode", rr.mode}, {"p_want", rr.p_want}, {"ip", param_to_value(rr.ip)}, {"exc", param_to_value(rr.exc)}};
    mode_report_key_ = "remote";
    mode_report_ = Value(std::move(d));
    sync_items();
}

// ---------------------------------------------------------------- modes (§14, §15)

Task<void> InverterPlugin::run_mode(Mode mode, Op& op) {
    if (auto why = refuse_closed_loop(mode, feed_in()))
        throw std::runtime_error(*why);
    report_.reset();
    mode_report_.reset();
    const LoopTiming timing{trigger_sleep_, idle_sleep_};
    if (mode != Mode::analyze) {
        co_await inverter::run_mode(ctl_, *this, timing, mode, op);
        co_return;
    }
    // analyze talks to the MoaT BMS; a battery service without it refuses the mode.
    analyze_report_.reset();
    const std::string service = bms_service();
    if (service.empty())
        throw std::runtime_error("analyze needs the MoaT BMS, and there is no battery service (the system's "
                                 "/Dc/Battery/BatteryService is empty and [inverter] bms_service is not set)");
    BmsClient bms(ctx_.bus, service, writer_.fake(), ctx_.log);
    co_await bms.connect();
    ctx_.log.info("analyze: the MoaT BMS on {}; the SoC cutoff ({:g}) does not apply while the test runs (the cells "
                  "end the discharge; the BMS's discharge limits still apply)", service, sp_.soc_cutoff);
    co_await inverter::run_mode(ctl_, *this, timing, mode, op, &bms);
}

// ---------------------------------------------------------------- background (§13)

Task<void> InverterPlugin::battery_average() {
    // §13.1: a 4-slot window of i_batt every 1.1 s; None does not kill the task.
    for (;;) {
        ctx_.fault_point("i_batt_average");
        auto i = num(system_service, "/Dc/Battery/Current");
        i_batt_window_.push_back(i ? std::optional<double>(-*i) : std::nullopt);
        if (i_batt_window_.size() > 4) i_batt_window_.erase(i_batt_window_.begin());
        if (i_batt_window_.size() == 4 && std::all_of(i_batt_window_.begin(), i_batt_window_.end(), [](auto& x) { return x.has_value(); })) {
            double s = 0;
            for (auto& x : i_batt_window_) s += *x;
            i_batt_avg_ = s / 4;
        }
        co_await sleep_for(1100ms);
    }
}

Task<void> InverterPlugin::pv_tracking() {
    // §13.2 every 0.9 s; an invalid PV current is skipped (no busy loop).
    for (;;) {
        if (auto i = num(system_service, "/Dc/Pv/Current"))
            if (ctl_.pv.update(*i))
                ctx_.log.error("PV went down too fast: pv_margin now {:.3f}", ctl_.pv.limits().pv_margin);
        co_await sleep_for(900ms);
    }
}

Task<void> InverterPlugin::solar_power() {
    // §13.3 once per second: the sum of /Yield/Power of every solar charger.
    for (;;) {
        double s = 0;
        for (auto& info : ctx_.monitor.services("com.victronenergy.solarcharger"))
            if (auto p = num(info.name, "/Yield/Power")) s += *p;
        solar_p_ = s;
        co_await sleep_for(1s);
    }
}

Task<void> InverterPlugin::run() {
    watch_.start();
    auto& mon = ctx_.monitor;
    for (const char* p : {"com.victronenergy.system", "com.victronenergy.vebus", "com.victronenergy.battery",
                          "com.victronenergy.settings", "com.victronenergy.solarcharger"})
        mon.watch(p);
    // Freshness (§18.3 "frozen"): any update of a followed service, except our own setpoint writes.
    for (const char* p : {"com.victronenergy.system", "com.victronenergy.vebus", "com.victronenergy.battery"})
        subs_.push_back(mon.on_change(p, "", [this](const std::string& service, const std::string& path, const Value& v) {
            if (v.is_valid() && !path.starts_with("/Hub4/")) watch_.updated(service);
        }));
    for (const char* path : {"/Settings/CGwacs/Hub4Mode", feed_in_path})
        subs_.push_back(mon.on_change(settings_service, path,
                                      [this](const std::string&, const std::string&, const Value&) { check_guard(); }));

    build_service();
    build_control();
    co_await svc_->start();
    const std::string control_name = control::bus_name(name_);
    {
        // Flag 4: do not queue (a taken name is an error, not a wait).
        std::vector<Value> args{Value(control_name), Value(std::int64_t(4))};  // (no braced list inside co_await: g++ 12)
        auto reply = co_await call_method(svc_->bus(), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                          "org.freedesktop.DBus", "RequestName", "su", std::move(args),
                                          std::chrono::seconds(5));
        const std::int64_t rc = reply.empty() || !reply[0].is_int() ? 0 : reply[0].as_int();
        if (rc != 1 && rc != 4)
            throw std::runtime_error(fmt::format("the bus name {} is taken by another process", control_name));
    }
    ctx_.log.info("control interface {} {} on {}; Venus items on {}{}", control_name, control::path, ctx_.bus_spec,
                  svc_->name(), writer_.fake() ? " (fake: nothing is written)" : "");

    auto body = [this](TaskGroup& g) -> Task<void> {
        auto read = [this] {
            ctx_.fault_point("guard");
            return safety_reading();
        };
        g.spawn(watch_.run(read, [this] { sync_items(); }), "guard");
        g.spawn(battery_average(), "i_batt average");
        g.spawn(pv_tracking(), "PV tracking");
        if (!writer_.fake()) g.spawn(solar_power(), "solar power");
        g.spawn(writer_.refresh(refresh_, [this] { return sup_.inputs_ok(); }), "refresh");
        co_await sup_.run();
    };
    co_await with_group(body);
}

} // namespace moat::inverter

MOAT_PLUGIN(moat::inverter::InverterPlugin, "inverter", "1.0",
            "Charger/inverter controller for ESS mode 3 (modes, limit chain, org.m_o_a_t.inv control interface)",
            moat::inverter::all_keys)
