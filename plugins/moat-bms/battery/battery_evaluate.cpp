// Battery::evaluate: from the readings to the published limits, flags,
// alarms and the safe state (the 2022 bridge's check_limits and update_dc,
// with the fixes described in docs/moat-bms-battery.md).
#include <cmath>
#include <cstdio>

#include "battery.hpp"

namespace moat::bms::battery {

namespace {
double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }
std::string fmt(const char* f, double a, double b = 0, double c = 0) {
    char buf[200];
    std::snprintf(buf, sizeof buf, f, a, b, c);
    return buf;
}
} // namespace

bool Battery::pack_fresh(TimePoint now) const {
    return pack_at_ && *pack_at_ >= session_start_ && seconds(now - *pack_at_) < opt_.stale_pack_s;
}

bool Battery::cell_fresh(TimePoint now, int i) const {
    const auto& at = cell_at_[std::size_t(i)];
    return at && *at >= session_start_ && seconds(now - *at) < opt_.stale_cell_s;
}

std::optional<std::vector<double>> Battery::all_volts() const {
    std::vector<double> v;
    v.reserve(volts_.size());
    for (const auto& x : volts_) {
        if (!x) return std::nullopt;
        v.push_back(*x);
    }
    return v;
}

SafeReason Battery::safe_reason(TimePoint now) const {
    if (!link_) return SafeReason::no_link;
    if (!ready()) return SafeReason::session_starting;
    if (!pack_fresh(now)) return SafeReason::stale_pack;
    for (int i = 0; i < cfg_.n; ++i)
        if (!cell_fresh(now, i)) return SafeReason::stale_cells;
    return SafeReason::none;
}

void Battery::evaluate(TimePoint now) {
    Outputs o;
    o.reason = safe_reason(now);
    o.safe = o.reason != SafeReason::none;
    std::array<int, alarm_count> level{};
    auto raise_to = [&](Alarm a, int l) { level[std::size_t(a)] = std::max(level[std::size_t(a)], l); };
    bool chg = true, dis = true;

    auto volts = all_volts();
    std::optional<CellStats> stats;
    if (volts) stats = cell_stats(*volts);
    const auto& cc = cfg_.cell;

    // Trips act on any fresh reading while the link is up, ready or not.
    bool fresh_pack = link_ && pack_fresh(now);
    if (fresh_pack) {
        double u = pack_->volts, i = pack_->amps;
        if (u >= cfg_.u_max) trip(Alarm::HighVoltage, fmt("pack %.3f V ≥ batt.u.max %.3f V", u, cfg_.u_max));
        if (u <= cfg_.u_min) trip(Alarm::LowVoltage, fmt("pack %.3f V ≤ batt.u.min %.3f V", u, cfg_.u_min));
        if (umax_.value() && umin_.value()) {
            double umax_p = (*umax_.value() + cfg_.u_max) / 2, umin_p = (*umin_.value() + cfg_.u_min) / 2;
            if (u >= umax_p) {
                chg = false;
                raise_to(Alarm::HighVoltage, 1);
                if (!msg_pack_hi_) log(LogLine::Level::warning, fmt("pack %.3f V ≥ %.3f V: no charging", u, umax_p));
                msg_pack_hi_ = true;
            } else if (u < umax_p - 0.05) {
                msg_pack_hi_ = false;
            }
            if (u <= umin_p) {
                dis = false;
                raise_to(Alarm::LowVoltage, 1);
                if (!msg_pack_lo_) log(LogLine::Level::warning, fmt("pack %.3f V ≤ %.3f V: no discharging", u, umin_p));
                msg_pack_lo_ = true;
            } else if (u > umin_p + 0.05) {
                msg_pack_lo_ = false;
            }
        }
        if (stats && stats->sum > 0) {
            double dev = std::fabs(stats->sum - u) / stats->sum;
            if (dev > 0.02 && !warned_sum_) {
                warned_sum_ = true;
                log(LogLine::Level::warning, fmt("cell sum %.3f V and pack %.3f V differ by more than 2 %%", stats->sum, u));
            } else if (dev < 0.015 && warned_sum_) {
                warned_sum_ = false;
                log(LogLine::Level::info, "cell sum and pack voltage agree again");
            }
        }
        // Host-side current alarms; the controller trips at its own hard limits.
        if (i > cfg_.i_ext_max) raise_to(Alarm::HighChargeCurrent, cfg_.i_max && i > *cfg_.i_max ? 2 : 1);
        if (i < cfg_.i_ext_min) raise_to(Alarm::HighDischargeCurrent, cfg_.i_min && i < *cfg_.i_min ? 2 : 1);
    }

    for (int c = 0; c < cfg_.n; ++c) {
        const auto& v = volts_[std::size_t(c)];
        if (link_ && v && cell_fresh(now, c)) {
            if (*v >= thr_.hi_set) hi_flag_[std::size_t(c)] = true;
            else if (*v < thr_.hi_clear) hi_flag_[std::size_t(c)] = false;
            if (*v <= thr_.lo_set) lo_flag_[std::size_t(c)] = true;
            else if (*v > thr_.lo_clear) lo_flag_[std::size_t(c)] = false;
            if (*v >= cc.u_max) trip(Alarm::HighCellVoltage, fmt("cell %.0f at %.3f V ≥ cell.u.max %.3f V", c, *v, cc.u_max));
            if (*v <= cc.u_min) trip(Alarm::LowCellVoltage, fmt("cell %.0f at %.3f V ≤ cell.u.min %.3f V", c, *v, cc.u_min));
        }
        if (hi_flag_[std::size_t(c)]) chg = false, raise_to(Alarm::HighCellVoltage, 1);
        if (lo_flag_[std::size_t(c)]) dis = false, raise_to(Alarm::LowCellVoltage, 1);
    }

    // Temperatures gate charging and discharging but never trip.
    if (opt_.enforce_temp && cc.temp_min && cc.temp_max) {
        for (const auto& t : temps_) {
            if (!t.cell_c) continue;
            if (*t.cell_c < *cc.temp_min) chg = false, raise_to(Alarm::LowChargeTemperature, 1);
            if (*t.cell_c > *cc.temp_max) chg = false, raise_to(Alarm::HighTemperature, 1);
            if (*t.cell_c > *cc.temp_max + 5) dis = false, raise_to(Alarm::HighTemperature, 2);
        }
    }

    // A relay that is off (reported, forced, or tripped) carries no current either way.
    bool relay_off = relay_forced_off_ || (pack_ && !pack_->relay_on);
    if (relay_off || o.safe || !stats) chg = dis = false;

    for (std::size_t a = 0; a < alarm_count; ++a)
        if (latched_[a]) level[a] = 2;
    level[std::size_t(Alarm::InternalFailure)] = o.safe ? 2 : 0;
    for (std::size_t a = 0; a < alarm_count; ++a) o.alarms[a] = level[a];

    o.allow_charge = chg;
    o.allow_discharge = dis;
    if (umax_.value()) o.max_charge_voltage = *umax_.value() * cc.corr;
    if (umin_.value()) o.low_voltage = *umin_.value() * cc.corr;
    o.max_charge_current = chg ? cfg_.i_ext_max * pct_charge(cc, stats->max) : 0;
    o.max_discharge_current = dis ? -cfg_.i_ext_min * pct_discharge(cc, stats->min) : 0;
    o.connected = !o.safe;
    o.state = o.safe ? 10 : 9;
    o.error = o.safe ? 12 : 0;

    if (!o.safe) {
        double u = 0;
        switch (opt_.dc_voltage) {
        case DcVoltageSource::cells: u = stats->sum; break;
        case DcVoltageSource::cells_corr: u = stats->sum * cc.corr; break;
        case DcVoltageSource::bms: u = pack_->volts; break;
        }
        o.dc_voltage = u;
        o.dc_current = pack_->amps;
        o.dc_power = u * pack_->amps;
    }
    double tsum = 0;
    int tn = 0;
    for (int c = 0; c < cfg_.n; ++c) {
        const auto& t = temps_[std::size_t(c)].cell_c;
        if (!t) continue;
        tsum += *t, ++tn;
        if (!o.temp_min || *t < o.temp_min->celsius) o.temp_min = Outputs::TempExtreme{*t, c};
        if (!o.temp_max || *t > o.temp_max->celsius) o.temp_max = Outputs::TempExtreme{*t, c};
    }
    if (tn) o.temperature = tsum / tn;
    if (stats) {
        o.cells = stats;
        o.mid = mid_voltage(*volts);
        if (work_) o.soc = soc(*work_, cfg_, stats->min);
        int hi = 0, lo = 0;
        for (double v : *volts) hi += v > cc.ext_max, lo += v < cc.ext_min;
        o.blocking_charge = 100 * hi + (stats->sum > cfg_.u_ext_max);
        o.blocking_discharge = 100 * lo + (stats->sum < cfg_.u_ext_min);
    }
    for (bool b : in_balance_) o.balancing = o.balancing || b;

    if (o.reason != last_reason_) {
        if (o.reason == SafeReason::none)
            log(LogLine::Level::info, "safe state ended: limits published");
        else if (last_reason_ == SafeReason::none)
            log(LogLine::Level::error, std::string("safe state: ") + to_string(o.reason) + ": charging and discharging blocked");
        last_reason_ = o.reason;
    }
    out_ = o;
}

} // namespace moat::bms::battery
