// The inverter plugin's class (internal): the I/O shell around
// inverter-logic. plugin.cpp has the inputs, the modes' I/O and run();
// plugin_export.cpp the Venus items and the control interface org.m_o_a_t.inv.
#pragma once

#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <moat/dbus.hpp>
#include <moat/plugin.hpp>
#include <moat/service.hpp>
#include <moat/value.hpp>

#include "analyze.hpp"
#include "command.hpp"
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

inline constexpr const char* system_service = "com.victronenergy.system";
inline constexpr const char* settings_service = "com.victronenergy.settings";
inline constexpr const char* feed_in_path = "/Settings/CGwacs/OvervoltageFeedIn";

inline Duration seconds(double s) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); }
inline double secs(Duration d) { return std::chrono::duration<double>(d).count(); }

/// A finite number, or nullopt (invalid, a string, NaN, inf).
inline std::optional<double> number(const Value& v) {
    if (v.is_invalid()) return std::nullopt;
    auto n = v.as_number();
    if (n && std::isfinite(*n)) return n;
    return std::nullopt;
}

/// The configured start mode.
Mode start_mode(const Config& config);
/// The suffix of org.m_o_a_t.inv.<name>.
std::string control_suffix(const Config& config);
/// The bus name of the Venus items.
std::string venus_service_name(const Config& config);

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

} // namespace moat::inverter
