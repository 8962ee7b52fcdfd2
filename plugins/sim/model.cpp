#include "model.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <stdexcept>
#include <utility>

namespace moat::sim {

double time_of_day(double start_hour, double speedup, double elapsed_s) {
    double h = std::fmod(start_hour + elapsed_s * speedup / 3600.0, 24.0);
    return h < 0 ? h + 24.0 : h;
}

double DailyCurve::power(double hour) const {
    if (sunset_h <= sunrise_h || hour <= sunrise_h || hour >= sunset_h) return 0.0;
    return peak_w * std::sin(std::numbers::pi * (hour - sunrise_h) / (sunset_h - sunrise_h));
}

Noise::Noise(std::uint64_t seed, double sigma, double tau_s) : rng_(seed), sigma_(sigma), tau_(tau_s) {}

double Noise::gaussian() {
    if (spare_) return *std::exchange(spare_, std::nullopt);
    auto uniform = [this] { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; };  // [0, 1)
    const double u1 = 1.0 - uniform(), u2 = uniform();
    const double r = std::sqrt(-2.0 * std::log(u1)), phi = 2.0 * std::numbers::pi * u2;
    spare_ = r * std::sin(phi);
    return r * std::cos(phi);
}

double Noise::step(double dt) {
    if (sigma_ <= 0) return x_ = 0;
    const double a = tau_ > 0 ? std::exp(-dt / tau_) : 0.0;
    x_ = a * x_ + sigma_ * std::sqrt(1.0 - a * a) * gaussian();
    return x_;
}

Load::Load(const LoadConfig& c, int phases) : c_(c), phases_(phases) {
    for (int n = 0; n < phases; ++n)
        noise_.emplace_back(c.seed * 0x9E3779B97F4A7C15ULL + static_cast<std::uint64_t>(n) + 1, c.noise_w,
                            c.noise_time_s);
}

const std::array<double, max_phases>& Load::step(double dt, double hour) {
    double factor = 1.0;
    if (!c_.profile.empty()) {
        // Linear between the hourly points, wrapping at midnight.
        const auto size = c_.profile.size();
        const double pos = hour * static_cast<double>(size) / 24.0;
        const auto i = static_cast<std::size_t>(pos) % size;
        const double frac = pos - std::floor(pos);
        factor = c_.profile[i] * (1 - frac) + c_.profile[(i + 1) % size] * frac;
    }
    for (int n = 0; n < phases_; ++n) {
        const double base = n < static_cast<int>(c_.base_w.size()) ? c_.base_w[n] : 0.0;
        // dt 0 (the start) draws no noise: the sequence stays that of the seed.
        p_[n] = std::max(0.0, base * factor + (dt > 0 ? noise_[n].step(dt) : noise_[n].value()));
    }
    return p_;
}

double ocv(const std::vector<double>& table, double soc) {
    if (table.empty()) throw std::invalid_argument("empty OCV table");
    if (table.size() == 1) return table[0];
    const double pos = std::clamp(soc, 0.0, 100.0) / 100.0 * static_cast<double>(table.size() - 1);
    const auto i = std::min(static_cast<std::size_t>(pos), table.size() - 2);
    const double frac = pos - static_cast<double>(i);
    return table[i] * (1 - frac) + table[i + 1] * frac;
}

Battery::Battery(const BatteryConfig& c) : c_(c), soc_(std::clamp(c.soc, 0.0, 100.0)) { update_bms(); }

void Battery::set_soc(double soc) {
    soc_ = std::clamp(soc, 0.0, 100.0);
    // A jump re-evaluates the BMS from scratch (no hysteresis memory).
    bms_charge_ = soc_ < c_.full_soc;
    bms_discharge_ = soc_ > c_.empty_soc;
}

double Battery::max_charge_now(double cv) const {
    const double by_voltage = c_.r_internal > 0 ? (cv - open_circuit_voltage()) / c_.r_internal : charge_current_limit();
    return std::max(0.0, std::min(charge_current_limit(), by_voltage));
}

void Battery::step(double current, double dt) {
    current_ = current;
    const double stored = current > 0 ? current * c_.charge_efficiency : current;
    soc_ = std::clamp(soc_ + stored * dt / 3600.0 / c_.capacity_ah * 100.0, 0.0, 100.0);
    update_bms();
}

void Battery::update_bms() {
    if (soc_ >= c_.full_soc - 1e-9) bms_charge_ = false;
    else if (soc_ < c_.recharge_soc) bms_charge_ = true;
    if (soc_ <= c_.empty_soc + 1e-9) bms_discharge_ = false;
    else if (soc_ > c_.rearm_soc) bms_discharge_ = true;
}

Multi::Multi(const MultiConfig& c) : dc_max_charge_current(c.max_charge_current), c_(c) {
    if (c.phases < 1 || c.phases > max_phases) throw std::invalid_argument("a Multi has 1 to 3 phases");
}

double Multi::charge_current_limit() const {
    return std::max(0.0, std::min(dc_max_charge_current, dvcc.max_charge_current.or_else(dc_max_charge_current)));
}

void Multi::write_setpoint(int phase, double watts, double now_s) {
    setpoint_.at(static_cast<std::size_t>(phase)) = watts;
    last_write_ = now_s;
}

bool Multi::fallen_back(double now_s) const { return !last_write_ || now_s - *last_write_ > c_.timeout_s; }

double Multi::target(int n, double now_s, const MultiLimits& lim) const {
    // Only ESS mode 3 (external control) follows /Hub4/L<n>/AcPowerSetpoint; the
    // optimised modes 1 and 2 (hub4control regulating the grid) are not
    // simulated: the Multi holds 0 W at its AC input then.
    double p = fallen_back(now_s) || hub4_mode != 3 ? 0.0 : setpoint_[n];
    p = std::clamp(p, -c_.rating_w, c_.rating_w);
    if (mode == 4 || mode == 2) return 0.0;    // off, or inverter only (AC input open)
    if (mode == 1) p = std::max(p, 0.0);       // charger only
    if (disable_charge || !lim.allow_charge) p = std::min(p, 0.0);
    if (!lim.allow_discharge) p = std::max(p, 0.0);
    if (disable_feed_in) p = std::max(p, -lim.load[n]);
    return p;
}

void Multi::step(double dt, double now_s, double v, const MultiLimits& lim) {
    const double k = c_.tau_s > 0 ? 1.0 - std::exp(-dt / c_.tau_s) : 1.0;
    for (int n = 0; n < c_.phases; ++n) p_[n] += (target(n, now_s, lim) - p_[n]) * k;
    if (v <= 0) return;
    // The DC limits: scale the charging phases or the inverting ones.
    double charge = 0, discharge = 0;  // A, charge ≥ 0, discharge ≤ 0
    for (int n = 0; n < c_.phases; ++n) {
        if (p_[n] > 0) charge += p_[n] * c_.efficiency / v;
        else discharge += p_[n] / c_.efficiency / v;
    }
    if (charge + discharge > lim.dc_charge_max && charge > 0) {
        const double f = std::clamp((lim.dc_charge_max - discharge) / charge, 0.0, 1.0);
        for (int n = 0; n < c_.phases; ++n)
            if (p_[n] > 0) p_[n] *= f;
    } else if (charge + discharge < -lim.dc_discharge_max && discharge < 0) {
        const double f = std::clamp((-lim.dc_discharge_max - charge) / discharge, 0.0, 1.0);
        for (int n = 0; n < c_.phases; ++n)
            if (p_[n] < 0) p_[n] *= f;
    }
}

double Multi::ac_in_total() const {
    double s = 0;
    for (int n = 0; n < c_.phases; ++n) s += p_[n];
    return s;
}

double Multi::dc_power() const {
    double s = 0;
    for (int n = 0; n < c_.phases; ++n) s += p_[n] > 0 ? p_[n] * c_.efficiency : p_[n] / c_.efficiency;
    return s;
}

double Solar::max_current(double hour, double v) const {
    if (v <= 0) return 0.0;
    double i = std::min(available_power(hour) / v, c_.max_current);
    if (link_current) i = std::min(i, std::max(0.0, *link_current));
    return std::max(0.0, i);
}

System::System(const SystemConfig& c)
    : multi(c.multi), battery(c.battery), load(c.load, c.multi.phases), c_(c), yield_(c.solar.size(), 0.0) {
    for (auto& s : c.solar) solar.emplace_back(s);
    load.step(0, hour());  // the first published values already carry the load
}

double System::hour() const { return time_of_day(c_.start_hour, c_.speedup, t_); }

double System::pv_current() const {
    double s = 0;
    for (auto& c : solar) s += c.current();
    return s;
}

void System::advance(double dt) {
    if (dt <= 0) return;
    const int n = std::max(1, static_cast<int>(std::ceil(dt / c_.max_step_s - 1e-9)));
    for (int i = 0; i < n; ++i) substep(dt / n);
}

void System::substep(double dt) {
    const double h = hour();
    load.step(dt, h);
    const double v = battery.voltage();

    // What PV could deliver, each charger within its own and its link limits.
    std::vector<double> avail(solar.size());
    double pv_avail = 0;
    for (std::size_t i = 0; i < solar.size(); ++i) {
        double a = solar[i].max_current(h, v);
        if (solar[i].link_voltage && battery.config().r_internal > 0)
            a = std::min(a, std::max(0.0, (*solar[i].link_voltage - battery.open_circuit_voltage()) /
                                              battery.config().r_internal));
        avail[i] = a;
        pv_avail += a;
    }

    const double charge_max = battery.max_charge_now(charge_voltage());
    MultiLimits lim;
    lim.allow_charge = battery.allow_charge();
    // Below DVCC's BatteryLowVoltage the Multi stops inverting (no hysteresis here).
    lim.allow_discharge = battery.allow_discharge() && v >= multi.dvcc.battery_low_voltage.or_else(0.0);
    lim.dc_charge_max = std::min(charge_max, multi.charge_current_limit());
    // DVCC's discharge limit holds for the battery: the Multi may draw that plus the PV.
    lim.dc_discharge_max =
        std::min(battery.discharge_current_limit(), multi.dvcc.max_discharge_current.or_else(1e9)) + pv_avail;
    lim.load = load.power();
    t_ += dt;
    multi.step(dt, t_, v, lim);
    const double i_multi = i_multi_ = multi.dc_current(v);

    // PV takes what the battery may still absorb after the Multi (DVCC's job on a GX).
    const double pv_allowed = std::max(0.0, charge_max - i_multi);
    const double scale = pv_avail > pv_allowed && pv_avail > 0 ? pv_allowed / pv_avail : 1.0;
    double i_pv = 0;
    for (std::size_t i = 0; i < solar.size(); ++i) {
        solar[i].set(avail[i] * scale, avail[i]);
        i_pv += solar[i].current();
        yield_[i] += solar[i].current() * v * dt / 3.6e6;
    }

    // The battery takes the rest: the DC balance holds by construction. Cut
    // off, it takes nothing (the Multi and PV are held at 0 by the limits;
    // what the Multi still ramps down meanwhile goes nowhere).
    battery.step(battery.cut_off() ? 0.0 : i_pv + i_multi, dt);
    for (int k = 0; k < phases(); ++k) grid_energy[k].add(grid(k), dt);
}

} // namespace moat::sim
