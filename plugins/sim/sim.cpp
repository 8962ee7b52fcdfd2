// sim: a simulated Venus system on D-Bus (issue 5). The physics lives in
// model.hpp, what each service shows in devices.hpp; this file publishes it:
// one moat::Service (one connection) per device, one batch per service and
// update, client writes into the model, and fault injection. With
// grid.modbus the grid meter is not published but served as a simulated
// Modbus TCP meter (plugins/meters' simulator) for a meters plugin to read;
// the system service then takes the grid from the bus like systemcalc.
#include <chrono>
#include <climits>
#include <cmath>
#include <memory>
#include <vector>

#include <moat/plugin.hpp>
#include <moat/service.hpp>
#include <moat/settings_service.hpp>

#include "clocked.hpp"
#include "devices.hpp"
#include "sim_config.hpp"
#include "simulator.hpp"  // moat-modbus: the simulated Modbus meter
#include "sim_pty.hpp"    // moat-bms-sim: the simulated MoaT BMS controller
#include "moat_bms_paths.hpp"

namespace {

using namespace moat;
using namespace moat::sim;
namespace msim = moat::meters::sim;

/// The grid meter served over Modbus TCP: the model's grid values in a
/// simulated meter's registers.
struct ModbusGrid {
    msim::SimBus bus;
    msim::SimMeter* meter = nullptr;
    std::unique_ptr<msim::TcpServer> server;
};

struct Device {
    DeviceKind kind;
    std::size_t index = 0;  ///< solar chargers
    std::string name;
    DeviceInfo info;
    std::unique_ptr<Service> svc;        ///< null while vanished
    Fault fault = Fault::none;
    std::optional<Fault> requested;      ///< written to /Sim/Fault; applied on the next update
    std::optional<double> back_at;       ///< model time a vanished service returns
    std::optional<Values> on_bus;        ///< what the service shows now (nullopt: not on the bus)
};

class Sim final : public Plugin {
public:
    explicit Sim(Context& ctx) : ctx_(ctx), cfg_(parse_config(ctx.config)), sys_(cfg_.system) {}

    /// --check-config and each start: the sub-tables, every problem of them,
    /// with the code the constructor reads them with.
    static void validate(const Config& c) { parse_config(c); }

    Task<void> run() override {
        auto all = [this](TaskGroup& g) -> Task<void> {
            g.spawn(note_the_stop(), "sim stop");
            // The MoaT BMS controller runs beside the model, on its own pty.
            if (cfg_.moat_bms) g.spawn(serve_moat_bms(), "moat-bms sim");
            co_await run_model();
            g.cancel();
        };
        co_await with_group(all);
    }

    /// The stop begins when run() is cancelled, not when safe_state() starts:
    /// unwinding the rest (the MoaT BMS controller's pty) takes loop turns in
    /// which the other plugins' safe-state writes may already arrive.
    Task<void> note_the_stop() {
        try {
            Event never;
            co_await never.wait();
        } catch (const Cancelled&) {
            began_stopping();
            throw;
        }
    }

    void began_stopping() {
        if (stopping_) return;
        stopping_ = true;
        stop_began_ = ctx_.loop.clock().now();
    }

    Task<void> serve_moat_bms() {
        const auto& m = *cfg_.moat_bms;
        bms::sim::PtyServer server;
        server.link = m.link;
        server.controller.cells = m.cells;
        server.controller.modules = m.modules;
        server.controller.quirks_2022 = m.quirks_2022;
        server.controller.time_factor = m.time_factor;
        server.controller.seed = m.seed;
        server.controller.byte_ring = m.byte_ring;
        if (m.baud != 2400) {  // the ring's speed is the controller's ser.baud
            auto cfg = bms::sim::default_device_config(m.cells);
            if (auto* top = cfg.map())
                for (auto& [key, value] : *top)
                    if (key == "ser") value.set("baud", m.baud);
            server.controller.device_config = std::move(cfg);
        }
        server.options.float32 = m.float32;
        server.options.guarded = !m.unix_socket;
        // /Sim/MoatBms/...: the controller's faults and observables on D-Bus.
        bms_paths_ = std::make_unique<MoatBmsPaths>(ctx_.loop, ctx_.instance, ctx_.bus_spec, m.modules,
                                                    ctx_.log.child("moat-bms"));
        bms_paths_->reopen = &bms_reopen_;
        server.on_device = [this](bms::sim::SimDevice* dev, const std::string& pty) { bms_paths_->attach(dev, pty); };
        co_await bms_paths_->start();
        auto serve = [&](TaskGroup& g) -> Task<void> {
            g.spawn(refresh_moat_bms(), "moat-bms sim paths");
            if (m.unix_socket) co_await bms::sim::serve_unix(ctx_.loop, server, bms_reopen_, ctx_.log.child("moat-bms"));
            else co_await bms::sim::serve_pty(ctx_.loop, server, bms_reopen_, ctx_.log.child("moat-bms"));
            g.cancel();
        };
        co_await with_group(serve);
    }

    /// With [sim.moat_bms] battery set, the simulated battery service is not published.
    bool replaced_by_bms(const Device& d) const {
        return d.kind == DeviceKind::battery && cfg_.moat_bms && !cfg_.moat_bms->battery.empty();
    }

    Task<void> refresh_moat_bms() {
        for (;;) {
            co_await sleep_for(std::chrono::seconds(1));
            bms_paths_->refresh();
        }
    }

    Task<void> run_model() {
        if (cfg_.grid_modbus) serve_grid();
        if (cfg_.settings) {
            auto up = start_settings();
            co_await up;
        }
        make_devices();
        for (auto& d : devices_) {
            if (replaced_by_bms(*d)) {  // the MoaT BMS publishes the battery; the system reads its physics
                d->on_bus = battery_values(sys_);
                continue;
            }
            if (d->fault == Fault::vanish) {  // configured to be away from the start
                if (cfg_.vanish_seconds > 0) d->back_at = cfg_.vanish_seconds;
                continue;
            }
            auto up = bring_up(*d);
            co_await up;
        }
        ctx_.log.info("simulating {} phase(s), {} solar charger(s); services: {}", sys_.phases(), sys_.solar.size(),
                      names());
        const auto interval = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(cfg_.update_interval));
        std::function<Task<void>()> step = [this]() { return update(); };
        co_await run_clocked(ctx_.loop, sys_, interval, step);
    }

    /// On stop every plugin goes to its safe state at the same time. A real
    /// Multi stays on the bus while a controller writes its safe setpoints; so
    /// do the simulated services (frozen: the physics ended with run()) for
    /// `stop_linger` seconds, unless every phase got a setpoint write since
    /// the stop began (run() cancelled: see note_the_stop).
    Task<void> safe_state() override {
        if (cfg_.stop_linger <= 0 || devices_.empty() || !devices_.front()->svc) co_return;
        ctx_.log.info("keeping the simulated services on the bus for up to {} s (safe-state writes)",
                      cfg_.stop_linger);
        const auto step = std::chrono::milliseconds(20);
        const auto until = ctx_.loop.clock().now() +
                           std::chrono::duration_cast<Duration>(std::chrono::duration<double>(cfg_.stop_linger));
        began_stopping();
        while (ctx_.loop.clock().now() < until && written_after_stop_ != (1u << sys_.phases()) - 1)
            co_await sleep_for(step);
        if (written_after_stop_ == (1u << sys_.phases()) - 1)
            ctx_.log.info("every phase got a setpoint after the stop: leaving the bus");
    }

private:
    /// com.victronenergy.settings with the ESS and DVCC settings. Existing
    /// values (from the file) are kept; an add only creates what is missing.
    Task<void> start_settings() {
        settings_ = std::make_unique<SettingsService>(ctx_.loop, ctx_.bus_spec, cfg_.settings_file,
                                                      ctx_.log.child("settings"));
        for (const auto& s : ess_settings()) {
            const auto type = s.default_value.is_string()   ? SettingType::string
                              : s.default_value.is_int() ? SettingType::integer
                                                             : SettingType::floating;
            if (int rc = settings_->add(s.path, s.default_value, type, s.min, s.max); rc != settings_code::ok)
                ctx_.log.warning("settings: {} not added: {}", s.path, settings_code_name(rc));
        }
        co_await settings_->start();
        follow_hub4_mode();
    }

    /// The Multi follows its setpoints only in Hub4Mode 3 (read at every update).
    void follow_hub4_mode() {
        if (!settings_) return;
        auto n = settings_->value(hub4_mode_path).as_number();
        int mode = n ? static_cast<int>(*n) : 3;
        if (mode != sys_.multi.hub4_mode)
            ctx_.log.info("Hub4Mode {} -> {}{}", sys_.multi.hub4_mode, mode,
                          mode == 3 ? "" : ": the Multi ignores /Hub4/L<n>/AcPowerSetpoint");
        sys_.multi.hub4_mode = mode;
    }

    std::string names() const {
        std::string s;
        for (auto& d : devices_)
            if (!replaced_by_bms(*d)) s += (s.empty() ? "" : ", ") + d->name;
        return s;
    }

    void make_devices() {
        auto add = [&](DeviceKind kind, std::size_t index, std::string name, std::int64_t instance,
                       std::string product, std::int64_t firmware) {
            auto d = std::make_unique<Device>();
            d->kind = kind;
            d->index = index;
            d->name = std::move(name);
            d->info = DeviceInfo{.process_name = "moat-victron sim",
                                 .process_version = "1.0",
                                 .connection = "Simulation",
                                 .device_instance = instance,
                                 .product_id = 0xFFFF,  // no real product: nothing applies quirks to it
                                 .product_name = std::move(product),
                                 .firmware_version = firmware,
                                 .hardware_version = Value(),
                                 .connected = 1};
            if (auto f = cfg_.faults.find(kind); f != cfg_.faults.end() && cfg_.fault_after <= 0) d->fault = f->second;
            devices_.push_back(std::move(d));
        };
        const auto& sfx = cfg_.suffix;
        add(DeviceKind::vebus, 0, "com.victronenergy.vebus." + sfx, cfg_.vebus_instance, "MoaT simulated Multi", 0x502);
        add(DeviceKind::battery, 0, "com.victronenergy.battery." + sfx, cfg_.battery_instance,
            "MoaT simulated battery", 0x100);
        for (std::size_t i = 0; i < sys_.solar.size(); ++i)
            add(DeviceKind::solarcharger, i, fmt::format("com.victronenergy.solarcharger.{}_{}", sfx, i),
                cfg_.solar_instances[i], "MoaT simulated solar charger", 0x165);
        if (!modbus_grid_)
            add(DeviceKind::grid, 0, "com.victronenergy.grid." + sfx, cfg_.grid_instance, "MoaT simulated grid meter",
                0x100);
        if (cfg_.system_service)
            add(DeviceKind::system, 0, "com.victronenergy.system", 0, "MoaT simulated system", 0x100);
        faults_pending_ = !cfg_.faults.empty() && cfg_.fault_after > 0;
    }

    Values values_of(const Device& d) const {
        switch (d.kind) {
        case DeviceKind::vebus: return vebus_values(sys_);
        case DeviceKind::battery: return battery_values(sys_);
        case DeviceKind::solarcharger: return solar_values(sys_, d.index);
        case DeviceKind::grid: return grid_values(sys_);
        case DeviceKind::system: break;
        }
        Published p;
        p.vebus_name = devices_.front()->name;
        p.vebus_instance = cfg_.vebus_instance;
        p.battery_name = cfg_.moat_bms && !cfg_.moat_bms->battery.empty() ? cfg_.moat_bms->battery : devices_[1]->name;
        p.battery_instance = cfg_.battery_instance;
        p.battery_product = devices_[1]->info.product_name;
        p.battery_connection = devices_[1]->info.connection;
        p.grid_name = "com.victronenergy.grid." + cfg_.suffix;
        p.grid_instance = cfg_.grid_instance;
        if (settings_)
            for (const char* path : {"/Settings/CGwacs/BatteryLife/State", "/Settings/CGwacs/BatteryLife/SocLimit"})
                p.settings[path] = settings_->value(path);
        for (auto& x : devices_) {
            switch (x->kind) {
            case DeviceKind::vebus: p.vebus = x->on_bus; break;
            case DeviceKind::battery: p.battery = x->on_bus; break;
            case DeviceKind::solarcharger: p.solar.push_back(x->on_bus); break;
            case DeviceKind::grid: p.grid = x->on_bus; break;
            case DeviceKind::system: break;
            }
        }
        if (modbus_grid_) p.grid = grid_from_bus(p.grid_name, p.grid_instance);
        auto v = systemcalc(p, sys_.phases());
        v["/Sim/Hour"] = sys_.hour();
        return v;
    }

    /// Create the service with every path, then take the name (§8.1).
    Task<void> bring_up(Device& d) {
        auto svc = std::make_unique<Service>(ctx_.loop, d.name, ctx_.bus_spec, ctx_.log.child(to_string(d.kind)));
        svc->add_mandatory(d.info);
        auto vals = values_of(d);
        if (d.fault == Fault::invalid) vals = invalidated(vals);
        for (const auto& [path, value] : vals) svc->add(path, value, options(d.kind, path));
        svc->add("/Sim/Fault", static_cast<int>(d.fault), options(d.kind, "/Sim/Fault")
                 .text(format::table({{0, "none"}, {1, "freeze"}, {2, "invalid"}, {3, "vanish"}})));
        Device* dev = &d;
        // A controller writes the Multi every second or so: that is debug detail.
        if (d.kind == DeviceKind::vebus) svc->set_write_log_level(LogLevel::debug);
        svc->on_write([this, dev](const Write& w) { written(*dev, w); });
        co_await svc->start();
        d.svc = std::move(svc);
        d.on_bus = std::move(vals);
        d.back_at.reset();
    }

    static ItemOptions options(DeviceKind kind, std::string_view path) {
        ItemOptions o;
        if (auto f = text_format(path); !f.empty()) o.text(f);
        if (auto w = writeable(kind, path)) {
            // The range goes into the validator (velib items have no GetMin/GetMax either);
            // a refusal answers 2 just as min/max would.
            o.writeable()
                .type(w->type == Writeable::Type::integer ? ValueType::integer : ValueType::floating)
                .report_equal_writes(w->keep_alive)
                .validator([w = *w](const Value& v) {
                    if (v.is_invalid()) return w.may_be_invalid;
                    auto d = v.as_number();
                    return d && *d >= w.min && *d <= w.max;
                });
        }
        return o;
    }

    /// A client's write (called after the reply, inside D-Bus dispatch: change nothing but state).
    void written(Device& d, const Write& w) {
        if (w.path == "/Sim/Fault") {
            if (auto n = w.value.as_number()) d.requested = static_cast<Fault>(static_cast<int>(*n));
            return;
        }
        if (stopping_ && d.kind == DeviceKind::vebus && w.path.starts_with("/Hub4/L") &&
            w.path.ends_with("/AcPowerSetpoint") && w.path.size() > 7 && w.path[7] >= '1' && w.path[7] <= '3') {
            written_after_stop_ |= 1u << (w.path[7] - '1');
            // The record a test (or a user) checks the safe state against: what
            // arrived, and when, by the host's own clock.
            const double after = std::chrono::duration<double>(ctx_.loop.clock().now() - stop_began_).count();
            ctx_.log.info("after the stop: {} = {:r} from {}, {:.3f} s after the stop began", w.path, w.value,
                          w.sender, after);
        }
        if (!apply_write(sys_, d.kind, d.index, w.path, w.value))
            ctx_.log.warning("{}: write to {} not taken by the model", d.name, w.path);
    }

    void set_fault(Device& d, Fault f) {
        if (f == d.fault) return;
        ctx_.log.info("{}: fault {} -> {}", d.name, to_string(d.fault), to_string(f));
        d.fault = f;
        if (f == Fault::vanish) {
            // Gone like a killed process: the connection closes, nothing is invalidated first.
            d.svc.reset();
            d.on_bus.reset();
            if (cfg_.vanish_seconds > 0) d.back_at = sys_.now() + cfg_.vanish_seconds;
        } else if (d.svc) {
            d.svc->set("/Sim/Fault", static_cast<int>(f));
        }
    }

    /// Start the simulated Modbus grid meter (before anything waits: a meters
    /// plugin started next finds it at its first probe).
    void serve_grid() {
        const auto& g = *cfg_.grid_modbus;
        auto kind = msim::kind_from_name(g.type);  // the config allows only known names
        modbus_grid_ = std::make_unique<ModbusGrid>();
        modbus_grid_->meter = &modbus_grid_->bus.add(*kind, g.unit, g.serial);
        modbus_grid_->meter->set_profile(msim::Profile::external);
        feed_grid_meter();
        modbus_grid_->server = std::make_unique<msim::TcpServer>(ctx_.loop, modbus_grid_->bus, g.host, g.port);
        ctx_.log.info("grid meter: simulated {} (unit {}, serial {}) on Modbus TCP {}:{}", g.type, g.unit, g.serial,
                      g.host, modbus_grid_->server->port());
        // The system service reads the grid meter that is on the bus (the meters plugin's).
        ctx_.monitor.watch("com.victronenergy.grid");
    }

    /// The model's grid values into the meter's registers. A meter shows
    /// current as a magnitude; the sign is in the power.
    void feed_grid_meter() {
        auto& m = *modbus_grid_->meter;
        double amps = 0;
        for (const auto& [path, value] : grid_values(sys_)) {
            auto n = value.as_number();
            if (!n || path == "/NrOfPhases" || path == "/ErrorCode") continue;
            double v = *n;
            if (path.ends_with("/Current")) {
                v = std::abs(v);
                amps += v;
            }
            m.set(path, v);
        }
        m.set("/Ac/Current", amps);
        m.update(sys_.now());
    }

    /// The grid as systemcalc sees it with the meter on Modbus: the phase
    /// powers of the grid service on the bus with the lowest device instance
    /// (none: no grid, the system's grid values go invalid).
    std::optional<Values> grid_from_bus(std::string& name, std::int64_t& instance) const {
        auto grids = ctx_.monitor.services("com.victronenergy.grid");
        const ServiceInfo* best = nullptr;
        for (const auto& s : grids)
            if (!best || s.device_instance.value_or(INT64_MAX) < best->device_instance.value_or(INT64_MAX)) best = &s;
        if (!best) return std::nullopt;
        name = best->name;
        instance = best->device_instance.value_or(0);
        Values v;
        for (int n = 1; n <= sys_.phases(); ++n) {
            const auto path = fmt::format("/Ac/L{}/Power", n);
            v[path] = ctx_.monitor.value(best->name, path);
        }
        return v;
    }

    Task<void> update() {
        follow_hub4_mode();
        if (modbus_grid_) feed_grid_meter();
        if (faults_pending_ && sys_.now() >= cfg_.fault_after) {
            faults_pending_ = false;
            for (auto& d : devices_)
                if (auto f = cfg_.faults.find(d->kind); f != cfg_.faults.end()) set_fault(*d, f->second);
        }
        for (auto& d : devices_) {
            if (d->requested) set_fault(*d, *std::exchange(d->requested, std::nullopt));
            if (!d->svc && d->back_at && sys_.now() >= *d->back_at) {
                ctx_.log.info("{}: back on the bus", d->name);
                d->fault = Fault::none;
                auto up = bring_up(*d);
                co_await up;
                continue;
            }
            if (replaced_by_bms(*d)) {
                // The system reads the battery's physics; the MoaT BMS controller measures its
                // current, its cells follow its voltage, and its open relay takes the battery off the DC bus.
                if (bms_paths_) {
                    const auto relay = bms_paths_->relay();
                    if (relay && *relay == sys_.battery.cut_off())
                        ctx_.log.info("moat-bms relay {}: the battery is {} the DC bus", *relay ? "closed" : "open",
                                      *relay ? "back on" : "off");
                    sys_.battery.set_cut_off(relay && !*relay);
                    bms_paths_->set_pack_current(sys_.battery.current());
                    bms_paths_->follow_pack_voltage(sys_.battery.voltage());
                }
                d->on_bus = battery_values(sys_);
                continue;
            }
            if (!d->svc || d->fault == Fault::freeze) continue;
            auto vals = values_of(*d);  // the system service last: it reads what the others just published
            if (d->fault == Fault::invalid) vals = invalidated(vals);
            {
                auto batch = d->svc->batch();
                for (const auto& [path, value] : vals)
                    if (auto* item = d->svc->find(path)) item->set(value);
            }
            d->on_bus = std::move(vals);
        }
    }

    Context& ctx_;
    SimConfig cfg_;
    System sys_;
    std::unique_ptr<SettingsService> settings_;
    std::unique_ptr<ModbusGrid> modbus_grid_;  ///< grid.modbus: the grid meter served over Modbus
    std::vector<std::unique_ptr<Device>> devices_;
    std::unique_ptr<MoatBmsPaths> bms_paths_;
    Event bms_reopen_;  ///< set: the simulated MoaT BMS controller reopens its pty
    bool faults_pending_ = false;
    bool stopping_ = false;              ///< run() was cancelled, or safe_state() runs
    TimePoint stop_began_{};             ///< when the stop began
    unsigned written_after_stop_ = 0;    ///< phases (bits) whose setpoint was written since
};

const auto keys = moat::sim::config_keys();

} // namespace

MOAT_PLUGIN(Sim, "sim", "1.0", "A simulated Venus system: Multi, battery, solar chargers, grid meter, system service",
            keys)
