#include "battery_session.hpp"

#include <chrono>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "balancing.hpp"
#include "battery_config.hpp"
#include "config_merge.hpp"
#include "conversions.hpp"
#include "ring_reader.hpp"

namespace moat::bms {

using namespace std::chrono;
using namespace battery;
using cell::CellError;
using cell::CellRequest;
using cell::Command;

namespace {

Duration secs(double s) { return duration_cast<Duration>(duration<double>(s)); }

double cfg_number(const msgpack::Value& tree, const std::string& path, double fallback)
{
    const auto* v = config_at(tree, path);
    return v && v->number() ? *v->number() : fallback;
}

/// The app's tree: the controller's copy with the TOML overrides laid over it (or the overrides alone).
msgpack::Value app_tree(const LinkSession& s, const Config& config, const Options& opt)
{
    msgpack::Value tree = msgpack::Value(msgpack::Map{});
    if (opt.device_config)
        if (const auto* dev = config_at(s.config, s.app)) tree = *dev;
    const msgpack::Value over = overrides(config);
    if (const auto* mine = config_at(over, s.app)) merge_config(tree, *mine);
    return tree;
}

/// Each TOML override that differs from the controller's copy ("key: controller X, TOML Y").
void differences(const msgpack::Value* device, const msgpack::Value& over, const std::string& key,
                 std::vector<std::string>& out)
{
    if (const auto* m = over.map()) {
        for (const auto& [k, v] : *m)
            differences(device && device->is_map() ? device->find(k) : nullptr, v, key.empty() ? k : key + "." + k, out);
        return;
    }
    const auto a = device ? device->number() : std::nullopt, b = over.number();
    auto show = [](const msgpack::Value& v) { return v.number() ? fmt::format("{:.6g}", *v.number()) : v.dump(40); };
    // The controller sends float32: 3.45 comes back as 3.4500000477.
    const bool same = device && (a && b ? std::abs(*a - *b) <= 1e-6 * std::max(1.0, std::abs(*b)) : *device == over);
    if (!device) out.push_back(fmt::format("{}: TOML {} (the controller has none)", key, show(over)));
    else if (!same) out.push_back(fmt::format("{}: controller {}, TOML {}", key, show(*device), show(over)));
}

/// Check the tree; problems end the session as a configuration error (retried in 30 s).
BatteryConfig checked_config(const LinkSession& s, const Config& config, const Options& opt, Logger& log)
{
    if (opt.device_config) {
        std::vector<std::string> diff;
        const msgpack::Value over = overrides(config);
        if (const auto* mine = config_at(over, s.app)) differences(config_at(s.config, s.app), *mine, s.app, diff);
        for (const auto& d : diff) log.info("configuration: the TOML override wins: {}", d);
    }
    Parsed p = parse_battery_config(app_tree(s, config, opt), opt);
    for (const auto& w : p.warnings) log.warning("configuration: {}", w);
    if (!p.problems.empty()) {
        try {
            raise(config, s.app, p.problems);
        } catch (const ConfigError& e) {
            throw DeviceConfigError(e.what());
        }
    }
    return *p.config;
}

CellRequest to_all(Command c, int n) { return CellRequest{.command = c, .start = 0, .count = n, .records = {}}; }

/// Log a failing periodic read once per kind of failure until a read succeeds again.
class FailureLog {
public:
    FailureLog(Logger& log, const char* what) : log_(log), what_(what) {}
    void failed(const std::exception& e) {
        if (last_ == e.what()) return;
        last_ = e.what();
        log_.warning("{}: {} (retrying; the cells go stale meanwhile)", what_, e.what());
    }
    void ok() {
        if (!last_.empty()) log_.info("{}: reading again", what_);
        last_.clear();
    }

private:
    Logger& log_;
    const char* what_;
    std::string last_;
};

} // namespace

std::optional<double> cell_volts(const cell::Settings& settings, std::span<const std::uint8_t> record, double offset)
{
    const auto v = cell::decode_voltage(record);
    if (cell::classify(v, settings.num_samples) != cell::Reading::value) return std::nullopt;
    const cell::VoltScale scale{settings.volts_per_step(), double(settings.calibration()), offset, settings.num_samples};
    return cell::raw_to_volt(v.raw(), scale);
}

Task<void> run_battery_session(LinkSession& s, BmsBattery& b, const Config& config, const SessionEvents& events, Logger log)
{
    BatteryConfig cfg = checked_config(s, config, b.options(), log);
    b.configure(cfg);
    b.with_model([](Battery& m, TimePoint now) { m.link_up(now); });
    const int n = cfg.n;
    const double tick_s = cfg.poll_t_ms / 1000.0;
    // The poll intervals may change on the controller while the session runs.
    auto current = [&b, &cfg]() -> const BatteryConfig& { return b.model() ? b.model()->config() : cfg; };

    // Energy summed by the controller while we were away (it is reset by this read).
    auto residual = s.client.info(-1, true, s.info_timeout);
    PackInfo first = co_await residual;
    b.with_model([&](Battery& m, TimePoint now) {
        m.on_work(first.work.sum * tick_s, double(first.work.ticks) * tick_s);
        m.on_pack(now, {first.u, first.i, first.relay.on});
    });

    // The start-up sequence: the ring must hold batt.n modules.
    auto size = ring_size(s);
    const int hops = co_await size;
    log.info("ring: {} modules", hops);
    if (auto problem = check_module_count(cfg, hops)) {
        const Problem list[] = {*problem};
        try {
            raise(config, s.app, list);
        } catch (const ConfigError& e) {
            throw DeviceConfigError(e.what());
        }
    }
    try {
        auto ident = s.cells.request(to_all(Command::identify, n));
        co_await ident;
    } catch (const CellError& e) {
        if (e.kind() == cell::CellErrorKind::no_such_cell) throw DeviceConfigError("Identify found no cells");
        throw;
    }
    auto clear = s.cells.request(CellRequest{.command = Command::write_balance_level, .start = 0, .count = 1,
                                             .broadcast = true, .records = {cell::Bytes{0, 0}}});
    co_await clear;
    auto settings = s.cells.request(to_all(Command::read_settings, n));
    cell::Reply rs = co_await settings;
    b.settings.clear();
    for (const auto& r : rs.records) b.settings.push_back(cell::decode_settings(r));
    auto pid = s.cells.request(to_all(Command::read_pid_config, n));
    co_await pid;
    std::fill(b.balance_threshold.begin(), b.balance_threshold.end(), std::nullopt);
    b.with_model([](Battery& m, TimePoint now) { m.session_started(now); });
    auto live = s.client.live();
    co_await live;
    b.with_model([](Battery& m, TimePoint now) { m.keepalive_sent(now); });
    log.info("battery: {} cells ready to be read (settings and PID values read, balance levels cleared)", n);

    s.client.on_work = [&b, tick_s](const WorkSums& w) {
        b.with_model([&](Battery& m, TimePoint) { m.on_work(w.sum * tick_s, double(w.ticks) * tick_s); });
    };
    const double offset = cfg_number(s.config, s.app + ".cell.u.offset", 0);

    auto pack_loop = [&]() -> Task<void> {
        std::int64_t gen = first.gen;
        for (;;) {
            auto call = s.client.info(gen, false, s.info_timeout);
            PackInfo p = co_await call;
            gen = p.gen;
            b.with_model([&](Battery& m, TimePoint now) { m.on_pack(now, {p.u, p.i, p.relay.on}); });
            if (events.pack) events.pack(p);
            co_await sleep_for(secs(current().t_voltage));
        }
    };
    auto cell_loop = [&]() -> Task<void> {
        FailureLog failures(log, "cell voltages");
        std::vector<CellReading> last;
        for (;;) {
            std::vector<CellReading> readings;
            try {
                auto read = s.cells.request(to_all(Command::read_voltage_and_status, n));
                cell::Reply r = co_await read;
                failures.ok();
                for (std::size_t i = 0; i < r.records.size() && i < b.settings.size(); ++i) {
                    const auto v = cell::decode_voltage(r.records[i]);
                    readings.push_back({cell_volts(b.settings[i], r.records[i], offset + b.cell_offset[i]), v.balancing(),
                                        v.load_over_temperature()});
                }
            } catch (const CellError& e) {
                failures.failed(e);
            }
            if (!readings.empty()) {
                b.with_model([&](Battery& m, TimePoint now) { m.on_cells(now, readings); });
                bool changed = readings.size() != last.size();
                for (std::size_t i = 0; !changed && i < readings.size(); ++i)
                    changed = readings[i].volts != last[i].volts || readings[i].in_balance != last[i].in_balance;
                if (events.cells) events.cells(changed);
                last = std::move(readings);
            }
            co_await sleep_for(secs(current().t_cellvoltage));
        }
    };
    auto temp_loop = [&]() -> Task<void> {
        FailureLog failures(log, "cell temperatures");
        const double b_load = cfg_number(s.config, s.app + ".cell.load.b", 3950);
        const double b_cell = cfg_number(s.config, s.app + ".cell.batt.b", 3950);
        std::vector<cell::Temperatures> last;
        for (;;) {
            std::vector<CellTemperature> temps;
            std::vector<cell::Temperatures> raw;
            try {
                auto read = s.cells.request(to_all(Command::read_temperature, n));
                cell::Reply r = co_await read;
                failures.ok();
                for (const auto& rec : r.records) {
                    const auto t = cell::decode_temperatures(rec);
                    raw.push_back(t);
                    temps.push_back({cell::raw_to_celsius(t.int_raw, b_load), cell::raw_to_celsius(t.ext_raw, b_cell)});
                }
            } catch (const CellError& e) {
                failures.failed(e);
            }
            if (!temps.empty()) {
                b.with_model([&](Battery& m, TimePoint now) { m.on_temperatures(now, temps); });
                if (events.temperatures) events.temperatures(raw != last);
                last = std::move(raw);
            }
            co_await sleep_for(secs(current().t_celltemperature));
        }
    };
    auto relay_loop = [&]() -> Task<void> {
        for (;;) {
            co_await b.relay_wake.wait();
            b.relay_wake.clear();
            while (!b.relay_requests.empty()) {
                const std::optional<bool> on = b.relay_requests.front();
                b.relay_requests.pop_front();
                auto call = s.client.force_relay(on);
                co_await call;
                log.info("relay: rly st={} sent", on ? (*on ? "true" : "false") : "nil");
            }
        }
    };
    auto config_loop = [&]() -> Task<void> {
        for (;;) {
            co_await b.config_wake.wait();
            b.config_wake.clear();
            while (!b.config_writes.empty()) {
                auto [delta, mode] = std::move(b.config_writes.front());
                b.config_writes.pop_front();
                auto call = s.client.update_config(delta, mode);
                co_await call;
                log.info("controller configuration changed{}: {}", mode == 1 ? " and stored" : "", delta.dump(200));
            }
        }
    };
    // A configuration change on the controller (its mplex.cfg notification,
    // also the echo of our own sys.cfg writes): the client merged the delta
    // into its copy; the overrides go over it again and the model takes the
    // checked result. A problem ends the session as a configuration error.
    const double poll_n0 = cfg_number(s.config, s.app + ".poll.n", 5);
    Event config_changed;
    s.client.on_config = [&config_changed, &log](const msgpack::Value& delta) {
        log.info("the controller reports a configuration change (mplex.cfg): {}", delta.dump(200));
        config_changed.set();
    };
    struct Unhook {  // the client may outlive this frame by a few notifications
        DeviceClient& c;
        ~Unhook() { c.on_config = nullptr; }
    } unhook{s.client};
    auto device_config_loop = [&]() -> Task<void> {
        for (;;) {
            co_await config_changed.wait();
            config_changed.clear();
            BatteryConfig next = checked_config(s, config, b.options(), log);
            // What the link and the start-up were set up with needs a new session
            // (the keepalive period, the ring size, the energy tick, info's timeout).
            const double poll_n = cfg_number(s.config, s.app + ".poll.n", 5);
            if (next.n != n || next.poll_k_ms != cfg.poll_k_ms || next.poll_t_ms != cfg.poll_t_ms || poll_n != poll_n0)
                throw std::runtime_error("batt.n or poll.* changed on the controller: the start-up runs again");
            b.configure(next);
            b.balance_wake.set();  // balancing levels may have moved
        }
    };
    auto balance_loop = [&]() -> Task<void> {
        FailureLog failures(log, "balancing");
        for (;;) {
            bool busy = false;
            Battery* m = b.model();
            if (m && m->balancing_allowed() && int(b.settings.size()) == n) {
                std::vector<BalanceCell> cells;
                bool all = true;
                for (int i = 0; i < n && all; ++i) {
                    const auto v = m->cell_volts()[std::size_t(i)];
                    all = v.has_value();
                    if (all) cells.push_back({*v, b.balance_threshold[std::size_t(i)], m->cell_in_balance()[std::size_t(i)],
                                              b.balance_forced[std::size_t(i)]});
                }
                if (all) {
                    BalancePlan plan = plan_balancing(m->config(), cells);
                    const std::string at_once = m->config().balance.n > 0 ? fmt::format("at most {}", m->config().balance.n) : "any number";
                    busy = plan.busy;
                    try {
                        for (const auto& a : plan.actions) {
                            const auto& st = b.settings[std::size_t(a.cell)];
                            const cell::VoltScale scale{st.volts_per_step(), double(st.calibration()), offset, st.num_samples};
                            cell::Bytes rec;
                            cell::put_le(rec, cell::volt_to_raw(a.threshold, scale), 2);
                            auto w = s.cells.request(CellRequest{.command = Command::write_balance_level,
                                                                 .start = std::uint8_t(a.cell), .count = 1, .records = {rec}});
                            co_await w;
                            b.balance_threshold[std::size_t(a.cell)] = a.threshold;
                            if (a.threshold)
                                log.info("balancing: cell {} ({:.3f} V) down to {:.3f} V (cells from {:.3f} V start, "
                                         "{} at once)", a.cell, cells[std::size_t(a.cell)].volts, *a.threshold,
                                         plan.start, at_once);
                            else log.info("balancing: cell {} ({:.3f} V) stopped", a.cell, cells[std::size_t(a.cell)].volts);
                        }
                        if (plan.read_pwm) {
                            auto r = s.cells.request(to_all(Command::read_balance_power, n));
                            cell::Reply pwm = co_await r;
                            for (std::size_t i = 0; i < pwm.records.size() && i < b.balance_pwm.size(); ++i)
                                b.balance_pwm[i] = pwm.records[i][0] / 255.0;
                        }
                        failures.ok();
                    } catch (const CellError& e) {
                        failures.failed(e);
                    }
                }
            }
            b.balance_wake.clear();
            try {
                auto wake = [&b]() -> Task<void> { co_await b.balance_wake.wait(); };
                auto wait = with_timeout(secs(busy ? 5 : 20), wake());
                co_await wait;
            } catch (const TimeoutError&) {
            }
        }
    };
    auto all = [&](TaskGroup& g) -> Task<void> {
        g.spawn(pack_loop(), "moat-bms pack");
        g.spawn(cell_loop(), "moat-bms cells");
        g.spawn(temp_loop(), "moat-bms temperatures");
        g.spawn(relay_loop(), "moat-bms relay");
        g.spawn(config_loop(), "moat-bms config writes");
        g.spawn(device_config_loop(), "moat-bms config changes");
        co_await balance_loop();
    };
    co_await with_group(all);
}

} // namespace moat::bms
