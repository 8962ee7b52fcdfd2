// The inverter plugin: the I/O shell around inverter-logic (inverter-control.md
// §3, §4, §12-§18). Reads the system, vebus, battery and settings services
// through the shared monitor, runs one mode at a time under a supervisor,
// writes /Hub4/L<n>/AcPowerSetpoint, exports the control interface
// org.m_o_a_t.inv on /Control and a Venus service with writeable items;
// analyze talks to the MoaT BMS through bms_client.hpp.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <moat/dbus.hpp>
#include <moat/plugin.hpp>
#include <moat/service.hpp>
#include <moat/value.hpp>

#include "analyze.hpp"
#include "bms_client.hpp"
#include "command.hpp"
#include "control_interface.hpp"
#include "controller.hpp"
#include "guard.hpp"
#include "inputs.hpp"
#include "mode_loop.hpp"
#include "modes.hpp"
#include "params.hpp"
#include "safety_watch.hpp"
#include "setpoint_writer.hpp"
#include "supervisor.hpp"

namespace moat::inverter {
namespace {

using namespace std::chrono_literals;

constexpr const char* control_iface = control::interface;
constexpr const char* err_too_early = control::error_too_early;
constexpr const char* err_unknown = control::error_unknown;
constexpr const char* system_service = "com.victronenergy.system";
constexpr const char* settings_service = "com.victronenergy.settings";
constexpr const char* feed_in_path = "/Settings/CGwacs/OvervoltageFeedIn";

Duration seconds(double s) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); }
double secs(Duration d) { return std::chrono::duration<double>(d).count(); }

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

// ---------------------------------------------------------------- values

std::optional<double> number(const Value& v) {
    if (v.is_invalid()) return std::nullopt;
    auto n = v.as_number();
    if (n && std::isfinite(*n)) return n;
    return std::nullopt;
}

/// A SetMode/SetModeParam argument as a parameter value; throws for strings etc.
ParamValue param_value(const Value& v, std::string_view name) {
    if (v.is_invalid()) return std::nullopt;
    if (auto n = v.as_number()) return *n;
    throw DBusError(control::error_invalid_value,
                    fmt::format("{}: expected a number, a boolean or None, not {}", name, kind_name(v)));
}

Value double_list(const std::vector<double>& v) {
    Value::List l;
    for (double x : v) l.emplace_back(x);
    return l;
}

Value limit_entry(const LimitEntry& e) {
    Value::Dict d;
    d["rule"] = std::string(to_string(e.rule));
    for (auto& [k, v] : e.values) d[k] = v;
    d["lim"] = e.lim;
    d["fix"] = e.fix;
    d["res"] = e.res;
    if (!e.step.empty()) d["step"] = double_list(e.step);
    return d;
}

Value cycle_report(const CycleReport& r) {
    Value::List limits;
    for (auto& e : r.limits) limits.push_back(limit_entry(e));
    Value::Dict d;
    d["init"] = r.init;
    d["limits"] = Value(std::move(limits));
    d["dest"] = r.dest;
    d["setpoint"] = r.setpoint;
    d["inv_phases"] = double_list(r.inv_phases);
    d["phases"] = double_list(r.phases);
    return d;
}

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

/// A refused mode change as the D-Bus error of §16.2.
DBusError dbus_error(const ModeChangeError& e) {
    using Kind = ModeChangeError::Kind;
    const char* name = e.kind == Kind::too_early           ? err_too_early
                       : e.kind == Kind::unknown_parameter ? control::error_unknown_parameter
                       : e.kind == Kind::invalid_value     ? control::error_invalid_value
                                                           : err_unknown;
    return DBusError(name, e.what());
}

// ---------------------------------------------------------------- the plugin

class InverterPlugin final : public Plugin, private LoopIo, private SupervisorIo, private SetpointIo {
public:
    /// `moat-victron inverter ...` comes with this plugin (command.cpp).
    static std::span<const ClientCommand* const> commands() {
        static const ClientCommand* const list[] = {&inverter_command};
        return list;
    }
    explicit InverterPlugin(Context& ctx);
    /// Everything the constructor reads, the modes table included, with the
    /// same functions; and the bus names this instance will own.
    static void validate(const Config& c) {
        // Independent checks: each one's problems are reported, not only the first's.
        auto check = [&](auto part) {
            try {
                part();
            } catch (const ConfigError& e) {
                c.problem(e);
            }
        };
        check([&] { system_params(c); });
        check([&] { start_mode(c); });
        check([&] { mode_defaults(c); });
        check([&] {
            if (auto why = bms_service_problem(c.get_string("bms_service"))) c.fail("bms_service", *why);
        });
        c.claim("name", "the D-Bus name org.m_o_a_t.inv." + control_suffix(c));
        c.claim("venus_service", "the D-Bus name " + venus_service_name(c));
    }
    Task<void> run() override;
    Task<void> safe_state() override;

private:
    // ---- inputs
    std::string vebus() override { return string_at(system_service, "/VebusService"); }
    std::string battery();
    std::string string_at(const std::string& service, const std::string& path);
    std::optional<double> num(const std::string& service, const std::string& path) {
        return service.empty() ? std::nullopt : number(ctx_.monitor.value(service, path));
    }
    bool present(const std::string& service) { return !service.empty() && ctx_.monitor.service(service).has_value(); }
    Readings readings();
    /// What the safety watch needs, read from the monitor.
    SafetyReading safety_reading();
    /// One pass of the safety watch (§18.3-§18.6); reacts to a change of state.
    void check_guard() {
        watch_.check(safety_reading());
        sync_items();
    }
    GuardDecision guard_now() override { return watch_.decide(safety_reading()); }
    std::optional<double> feed_in() { return num(settings_service, feed_in_path); }
    std::optional<double> hub4_mode() { return num(settings_service, "/Settings/CGwacs/Hub4Mode"); }
    /// The current inputs; waits while they are invalid (the guard stops the
    /// mode when that lasts too long).
    Task<Inputs> inputs() override;

    // ---- output (setpoint_writer.hpp)
    Task<void> write(std::vector<double> setpoints) override {
        return writer_.write(std::move(setpoints), Monitor::call_timeout, "mode_write");
    }
    Task<void> write_safe(const char* why) override;
    Task<int> set_value(std::string service, std::string path, double value, Duration timeout) override {
        return ctx_.monitor.set_value(std::move(service), std::move(path), value, timeout);
    }
    void fault_point(const char* name) override { ctx_.fault_point(name); }

    // ---- modes (the supervisor's and the mode loop's I/O)
    Task<void> run_mode(Mode mode, Op& op) override;
    int n_phase() override;
    void changed() override { sync_items(); }
    void turn() override { ctx_.fault_point("supervisor"); }
    Task<void> trigger(Duration sleep) override;
    /// Keep a cycle's report for GetState and log every rule that fired (§17).
    void record(const Cycle& c) override;
    void reading(double p_inv) override { ctx_.log.debug("now {:.0f}", p_inv); }
    void soc_report(const SocReport& r) override;
    void remote_report(const RemoteReport& r) override;
    double solar_p() override { return solar_p_; }
    TimePoint time_now() override { return ctx_.loop.clock().now(); }
    /// analyze's progress for GetState (kept after it ended); a new step is logged.
    void analyze_report(const Value::Dict& r) override;
    void hand_over(Mode next, const Op& args) override { sup_.hand_over(next, args, "analyze finished"); }
    /// The battery service analyze talks to: bms_service, else the system's battery.
    std::string bms_service() { return bms_service_.empty() ? battery() : bms_service_; }

    // ---- background (§13)
    Task<void> battery_average();
    Task<void> pv_tracking();
    Task<void> solar_power();

    // ---- export
    void build_service();
    void build_control();
    Value state();
    void sync_items();
    void on_remote_write(const Write& w);

    Context& ctx_;
    SystemParams sp_;
    Controller ctl_;
    std::string name_;
    Duration refresh_, trigger_sleep_, trigger_wait_, idle_sleep_;
    ModeSupervisor sup_;
    SafetyWatch watch_;
    SetpointWriter writer_;
    std::vector<Subscription> subs_;

    // reports
    std::optional<CycleReport> report_;
    std::optional<Value> mode_report_;  ///< to_soc / remote
    std::string mode_report_key_;
    std::string bms_service_;
    std::optional<Value::Dict> analyze_report_;  ///< the last analyze run's progress or result
    double solar_p_ = 0;
    double i_batt_avg_ = 0;
    std::vector<std::optional<double>> i_batt_window_;
    int last_n_phase_ = 0;

    std::unique_ptr<Service> svc_;
    std::unique_ptr<DBusObject> control_;
};

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
    ctx_.log.info("analyze: the MoaT BMS on {}", service);
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

// ---------------------------------------------------------------- export (§16)

Value InverterPlugin::state() {
    Value::Dict d;
    d["mode"] = Value::make_list({std::string(to_string(sup_.mode())), op_dict(sup_.op())});
    if (auto p = sup_.pending()) d["pending_mode"] = std::string(to_string(*p));
    if (report_) d["inverter"] = cycle_report(*report_);
    if (mode_report_) d[mode_report_key_] = *mode_report_;
    if (analyze_report_) d["analyze"] = Value(*analyze_report_);
    d["error"] = sup_.error().empty() ? Value() : Value(sup_.error());
    d["running"] = sup_.inputs_ok();
    // patches.md §5: the critical settings that are wrong (empty when none is).
    Value::Dict critical;
    for (auto& [path, v] : check_critical_settings({hub4_mode(), feed_in()}).wrong) critical[path] = v;
    d["critical_settings"] = Value(std::move(critical));
    const auto& low = watch_.low_battery();
    d["low_battery"] = low ? Value(*low) : Value();
    d["input_problem"] = watch_.input_problem().empty() ? Value() : Value(watch_.input_problem());
    d["safe_state"] = writer_.safe_state().empty() ? Value() : Value(writer_.safe_state());
    d["may_write"] = watch_.may_write();
    d["write_problem"] = watch_.write_problem().empty() ? Value() : Value(watch_.write_problem());
    d["fake"] = writer_.fake();
    d["written"] = double_list(writer_.last_written());
    d["i_batt_avg"] = i_batt_avg_;
    d["i_pv_max"] = ctl_.pv.limits().i_pv_max;
    d["pv_margin"] = ctl_.pv.limits().pv_margin;
    d["solar_p"] = solar_p_;
    std::string vb = vebus(), bat = battery();
    d["vebus"] = vb.empty() ? Value() : Value(vb);
    d["battery"] = bat.empty() ? Value() : Value(bat);
    if (auto left = sup_.lockout_left()) d["lockout"] = secs(*left);
    return d;
}

struct MainParam {
    const char* path;
    const char* param;
    const char* text;
};
const MainParam main_params[] = {
    {"/Power", "power", "%.0F W"},
    {"/Current", "current", "%.1F A"},
    {"/DestSoc", "dest_soc", "%.2F"},
    {"/Excess", "excess", "%.0F W"},
};

void InverterPlugin::build_service() {
    svc_ = std::make_unique<Service>(ctx_.loop, venus_service_name(ctx_.config), ctx_.bus_spec, ctx_.log.child("dbus"));
    // §16.3
    svc_->add_mandatory(DeviceInfo{.process_name = "moat-victron/inverter",
                                   .process_version = "0.1",
                                   .connection = "MoaT Inv",
                                   .device_instance = 1,
                                   .product_id = 123211,
                                   .product_name = "MoaT Inverter Controller",
                                   .firmware_version = "0.1",
                                   .hardware_version = Value(),
                                   .connected = 1});
    svc_->add("/Serial", "123457");
    auto mode_ok = [this](const Value& v) {
        if (!v.is_string()) return false;
        try {
            sup_.check_change(v.as_string(), {});
            return true;
        } catch (const ModeChangeError&) {
            return false;
        }
    };
    svc_->add("/Mode", std::string(to_string(sup_.target())),
              ItemOptions().writeable().type(ValueType::string).validator(mode_ok).description(
                  "the running mode: off idle p_grid p_inv i_batt soc remote analyze"));
    for (auto& mp : main_params) {
        std::string param = mp.param;
        auto ok = [this, param](const Value& v) {
            ParamValue pv;
            if (v.is_invalid()) pv = std::nullopt;
            else if (auto n = v.as_number()) pv = *n;
            else return false;
            return !sup_.check_param(param, pv).has_value();
        };
        svc_->add(mp.path, Value(), ItemOptions().writeable().type(ValueType::floating).validator(ok).text(mp.text));
    }
    svc_->add("/Error", "");
    svc_->add("/Status", "starting");
    for (int k = 1; k <= max_phases; ++k) svc_->add(fmt::format("/Setpoint/L{}", k), Value(), ItemOptions().text("%.0F W"));
    svc_->on_write([this](const Write& w) { on_remote_write(w); });
}

void InverterPlugin::on_remote_write(const Write& w) {
    ctx_.log.info("remote write {} by {}: {:r} -> {:r}", w.path, w.sender, w.old_value, w.value);
    try {
        if (w.path == "/Mode") sup_.change_mode(w.value.as_string(), {});
        for (auto& mp : main_params)
            if (w.path == mp.path) sup_.change_param(mp.param, number(w.value));
    } catch (const ModeChangeError& e) {
        ctx_.log.warning("remote write {} refused: {}", w.path, e.what());
    }
    sync_items();
}

void InverterPlugin::sync_items() {
    if (!svc_) return;
    auto batch = svc_->batch();
    const Op& op = sup_.target_op();
    svc_->set("/Mode", std::string(to_string(sup_.target())));
    for (auto& mp : main_params) {
        auto it = op.find(mp.param);
        svc_->set(mp.path, it != op.end() ? param_to_value(it->second) : Value());
    }
    svc_->set("/Error", sup_.error());
    std::string status = !sup_.inputs_ok() ? "input lost: " + watch_.input_problem()
                         : !watch_.may_write() && !writer_.fake() ? "not writing: " + watch_.write_problem()
                         : writer_.fake() ? "fake" : "running";
    svc_->set("/Status", status);
    for (int k = 0; k < max_phases; ++k)
        svc_->set(fmt::format("/Setpoint/L{}", k + 1),
                  k < static_cast<int>(writer_.last_written().size()) ? Value(writer_.last_written()[k]) : Value());
    std::string vb = vebus();
    auto dot = vb.rfind('.');
    svc_->set("/Mgmt/Connection", vb.empty() ? std::string("MoaT Inv") : "MoaT Inv " + vb.substr(dot + 1));
}

void InverterPlugin::build_control() {
    control_ = std::make_unique<DBusObject>(svc_->bus(), control::path);
    // A refused change is its own error; anything else is logged (a bug).
    auto guarded = [this](auto&& fn) {
        try {
            return fn();
        } catch (const ModeChangeError& e) {
            throw dbus_error(e);
        } catch (const DBusError&) {
            throw;
        } catch (const std::exception& e) {
            ctx_.log.error("control interface: {}", e.what());
            throw;
        }
    };
    using Args = std::vector<Value>;
    control_->add_method(control_iface, control::get_modes, "", "as", [guarded](const Args&) {
        return guarded([] {
            Value::List v;
            for (auto& m : modes()) v.emplace_back(std::string(m.name));
            return Args{Value(std::move(v))};
        });
    });
    control_->add_method(control_iface, control::get_mode_info, "s", "a{ss}", [guarded](const Args& args) {
        return guarded([&] {
            const std::string mode = args.at(0).as_string();
            auto m = parse_mode(mode);
            if (!m) throw DBusError(err_unknown, fmt::format("unknown mode '{}'", mode));
            Value::Dict info;
            for (auto& p : mode_info(*m).params)
                if (!p.hidden) info[p.name] = std::string(p.help);
            info["_l"] = std::string(mode_info(*m).description);
            return Args{Value(std::move(info))};
        });
    });
    control_->add_method(control_iface, control::set_mode, "sa{sv}", "b", [this, guarded](const Args& args) {
        return guarded([&] {
            Op op;
            if (args.at(1).is_dict())
                for (auto& [k, v] : args.at(1).as_dict()) op[k] = param_value(v, k);
            sup_.change_mode(args.at(0).as_string(), op);
            return Args{Value(true)};
        });
    });
    control_->add_method(control_iface, control::set_mode_param, "sv", "b", [this, guarded](const Args& args) {
        return guarded([&] {
            const std::string param = args.at(0).as_string();
            sup_.change_param(param, param_value(args.at(1), param));
            return Args{Value(true)};
        });
    });
    control_->add_method(control_iface, control::get_state, "", "a{sv}",
                         [this, guarded](const Args&) { return guarded([&] { return Args{state()}; }); });
    control_->publish();
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

} // namespace
} // namespace moat::inverter

MOAT_PLUGIN(moat::inverter::InverterPlugin, "inverter", "1.0",
            "Charger/inverter controller for ESS mode 3 (modes, limit chain, org.m_o_a_t.inv control interface)",
            moat::inverter::all_keys)
