#include "battery.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace moat::bms::battery {

namespace {

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }
Duration from_seconds(double s) { return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)); }

// A reading outside these is a sensor or decoding fault, not a cell state.
bool plausible_cell(double v) { return std::isfinite(v) && v > 0 && v <= 6; }
bool plausible_pack(const PackReading& r) {
    return std::isfinite(r.volts) && std::isfinite(r.amps) && r.volts >= 0 && r.volts <= 1000 && std::fabs(r.amps) <= 10000;
}
bool plausible_temp(const std::optional<double>& t) { return t && std::isfinite(*t) && *t > -60 && *t < 150; }

std::string fmt(const char* f, double a, double b = 0) {
    char buf[160];
    std::snprintf(buf, sizeof buf, f, a, b);
    return buf;
}

} // namespace

const char* alarm_name(Alarm a) {
    static const char* const names[] = {"LowVoltage",       "HighVoltage",          "LowCellVoltage",
                                         "HighCellVoltage",  "HighChargeCurrent",    "HighDischargeCurrent",
                                         "InternalFailure",  "HighTemperature",      "LowChargeTemperature"};
    return names[std::size_t(a)];
}

const char* to_string(SafeReason r) {
    switch (r) {
    case SafeReason::none: return "none";
    case SafeReason::no_link: return "link down";
    case SafeReason::session_starting: return "new link session not ready yet";
    case SafeReason::stale_pack: return "pack readings stale";
    case SafeReason::stale_cells: return "cell readings stale";
    }
    return "?";
}

Battery::Battery(BatteryConfig config, Options options)
    : cfg_(std::move(config)), opt_(std::move(options)), thr_(cell_thresholds(cfg_.cell)), volts_(cfg_.n), cell_at_(cfg_.n),
      in_balance_(cfg_.n, false), temps_(cfg_.n), hi_flag_(cfg_.n, false), lo_flag_(cfg_.n, false) {
    if (opt_.enforce_temp && cfg_.cell.temp_min && cfg_.cell.temp_max)
        log(LogLine::Level::info, fmt("temperature limits: charging between %.1f and %.1f °C", *cfg_.cell.temp_min, *cfg_.cell.temp_max) +
                                      fmt(", discharging up to %.1f °C", *cfg_.cell.temp_max + 5));
    else
        log(LogLine::Level::warning, "temperatures do not limit charging or discharging");
    evaluate(TimePoint{});  // the safe state until the first link
}

void Battery::set_config(const BatteryConfig& c) {
    // The ring size is fixed for the model's life; the plugin makes a new model when n changes.
    BatteryConfig next = c;
    next.n = cfg_.n;
    cfg_ = next;
    thr_ = cell_thresholds(cfg_.cell);
}

// ---------------------------------------------------------------- link

void Battery::link_up(TimePoint now) {
    link_ = true;
    session_start_ = now;
    started_ = keepalive_ = got_pack_ = got_cells_ = got_temps_ = false;
    relay_off_request_ = relay_forced_off_;
    evaluate(now);
}

void Battery::session_started(TimePoint now) {
    started_ = true;
    evaluate(now);
}

void Battery::keepalive_sent(TimePoint now) {
    keepalive_ = true;
    evaluate(now);
}

void Battery::link_down(TimePoint now, const std::string& why) {
    if (link_) log(LogLine::Level::warning, "link down (" + why + "): charging and discharging blocked");
    link_ = false;
    relay_off_request_ = false;  // nothing to send it on
    evaluate(now);
}

bool Battery::ready() const { return link_ && started_ && keepalive_ && got_pack_ && got_cells_ && got_temps_; }

// ---------------------------------------------------------------- readings

void Battery::on_pack(TimePoint now, const PackReading& r) {
    if (!plausible_pack(r)) {
        log(LogLine::Level::warning, fmt("implausible pack reading %g V %g A ignored", r.volts, r.amps));
    } else {
        pack_ = r;
        pack_at_ = now;
        got_pack_ = true;
    }
    evaluate(now);
}

void Battery::on_cells(TimePoint now, std::span<const CellReading> cells) {
    for (int i = 0; i < cfg_.n; ++i) {
        if (i >= int(cells.size())) continue;  // no reply: the cell ages towards stale
        const CellReading& c = cells[std::size_t(i)];
        in_balance_[std::size_t(i)] = c.in_balance;
        if (c.volts && plausible_cell(*c.volts)) {
            volts_[std::size_t(i)] = *c.volts;
            cell_at_[std::size_t(i)] = now;
        }
    }
    got_cells_ = true;

    // Once per cell cycle: the limit memories and the energy clamps (#14, #29).
    if (auto v = all_volts()) {
        double dt = last_cycle_ ? seconds(now - *last_cycle_) : 0;
        last_cycle_ = now;
        umax_.update(max_voltage_target(cfg_.cell, *v), dt, cfg_.cell.decay_s);
        umin_.update(min_voltage_target(cfg_.cell, *v), dt, cfg_.cell.decay_s);
        double mi = cell_stats(*v).min;
        if (!work_) {
            Seed s = seed_work(cfg_, mi);
            work_ = s.record;
            anchored_ = s.anchored;
            log(LogLine::Level::info, s.anchored ? fmt("energy record seeded at %.0f W·s from the cell voltages", s.record.sum)
                                                 : fmt("energy record seeded at half capacity (%.0f W·s): unanchored until the cells "
                                                       "leave the full-current range",
                                                       s.record.sum));
        }
        clamp_work(*work_, cfg_, mi);
        if (!anchored_ && (mi < cfg_.cell.lim_min || mi > cfg_.cell.lim_max)) {
            anchored_ = true;
            log(LogLine::Level::info, "energy record anchored at an end of the full-current range");
        }
    }
    evaluate(now);
}

void Battery::on_temperatures(TimePoint now, std::span<const CellTemperature> temps) {
    bool any = false;
    for (int i = 0; i < cfg_.n && i < int(temps.size()); ++i) {
        CellTemperature t = temps[std::size_t(i)];
        if (!plausible_temp(t.load_c)) t.load_c.reset();
        if (!plausible_temp(t.cell_c)) t.cell_c.reset();
        any = any || t.cell_c;
        temps_[std::size_t(i)] = t;
    }
    got_temps_ = true;
    if (!any && opt_.enforce_temp && !warned_no_temps_) {
        warned_no_temps_ = true;
        log(LogLine::Level::warning, "no cell has a temperature reading: temperatures do not limit charging");
    }
    evaluate(now);
}

void Battery::on_work(double ws, double secs) {
    if (!std::isfinite(ws) || !std::isfinite(secs) || secs < 0) return;
    if (!work_) work_ = WorkRecord{.cfg = cfg_.cap_cur};
    auto v = all_volts();
    // Without cell readings only the bounds clamp: a mid-range cell_min.
    double mi = v ? cell_stats(*v).min : (cfg_.cell.lim_min + cfg_.cell.lim_max) / 2;
    add_work(*work_, cfg_, ws, secs, mi);
}

void Battery::tick(TimePoint now) { evaluate(now); }

std::optional<TimePoint> Battery::next_deadline(TimePoint now) const {
    std::optional<TimePoint> next;
    auto consider = [&](const std::optional<TimePoint>& at, double limit) {
        if (!at) return;
        TimePoint t = *at + from_seconds(limit);
        if (t <= now) return;  // already past: tick() has applied it
        if (!next || t < *next) next = t;
    };
    if (!link_) return std::nullopt;  // already safe; nothing can change without a new event
    consider(pack_at_, opt_.stale_pack_s);
    for (const auto& at : cell_at_) consider(at, opt_.stale_cell_s);
    return next;
}

// ---------------------------------------------------------------- relay

void Battery::force_relay(TimePoint now, bool on) {
    relay_forced_off_ = !on;
    if (on) log(LogLine::Level::warning, "relay forced on: the controller's own pack checks are bypassed");
    evaluate(now);
}

void Battery::release_relay(TimePoint now) {
    relay_forced_off_ = false;
    latched_.fill(false);
    evaluate(now);
}

bool Battery::take_relay_off_request() { return std::exchange(relay_off_request_, false); }

void Battery::trip(Alarm a, const std::string& what) {
    relay_forced_off_ = true;
    relay_off_request_ = true;
    if (!latched_[std::size_t(a)]) {
        latched_[std::size_t(a)] = true;
        log(LogLine::Level::error, "trip: " + what + ": relay forced off until ReleaseRelay");
    }
}

// ---------------------------------------------------------------- energy

void Battery::restore_work(const std::optional<SavedWork>& saved, double now_unix_s) {
    if (saved && now_unix_s - saved->saved_unix_s <= opt_.work_max_age_s && now_unix_s >= saved->saved_unix_s) {
        work_ = saved->record;
        anchored_ = true;
        log(LogLine::Level::info, fmt("energy record restored: %.0f W·s, saved %.0f s ago", saved->record.sum, now_unix_s - saved->saved_unix_s));
    } else {
        work_.reset();
        if (saved) log(LogLine::Level::info, "saved energy record too old; seeding from the cell voltages");
    }
}

bool Battery::set_work(double ws) {
    if (!std::isfinite(ws) || ws < 0 || ws > cfg_.cap_cur) return false;
    work_ = WorkRecord{.sum = ws, .cfg = cfg_.cap_cur};
    anchored_ = true;
    return true;
}

bool Battery::set_capacity(double cap, double loss, bool top) {
    if (!std::isfinite(cap) || cap <= 0 || !std::isfinite(loss) || loss < 0 || loss >= 1) return false;
    cfg_.cap_cur = cap;
    cfg_.cap_loss = loss;
    work_ = WorkRecord{.sum = top ? cap : 0, .cfg = cap};
    anchored_ = true;
    return true;
}

std::optional<WorkRecord> Battery::get_work(bool clear) {
    auto w = work_;
    if (clear && work_) work_ = WorkRecord{.sum = work_->sum, .cfg = cfg_.cap_cur};
    return w;
}

std::vector<LogLine> Battery::take_log() { return std::exchange(log_, {}); }

} // namespace moat::bms::battery
