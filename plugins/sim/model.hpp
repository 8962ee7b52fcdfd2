// The physics of the simulated Venus system: pure classes, no bus, no loop.
//
// Sign conventions are Victron's (venus-dbus.md §12) everywhere in this file:
// battery and Multi DC current + = into the battery (charging); Multi AC-in
// power + = taken from the grid; grid power + = import; loads + = consumed.
//
// The two balances hold after every step, exactly (no measurement noise):
//   DC:            pv_current + multi_dc_current == battery_current
//   AC, phase n:   grid[n] == load[n] + multi_ac_in[n]
// All household loads sit on the AC-input side (grid-parallel); the Multi's
// AC output carries nothing.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace moat::sim {

inline constexpr int max_phases = 3;

/// Time of day in hours [0, 24) of simulated time `elapsed_s` after a start
/// at `start_hour`, with the sun moving `speedup` times faster than the clock.
double time_of_day(double start_hour, double speedup, double elapsed_s);

/// PV power over a day: peak · sin(π·(t − sunrise)/(sunset − sunrise))
/// between sunrise and sunset, 0 at night.
struct DailyCurve {
    double peak_w = 3000;
    double sunrise_h = 6;
    double sunset_h = 20;
    double power(double hour) const;
};

/// Repeatable noise: an Ornstein-Uhlenbeck process (Gaussian, standard
/// deviation `sigma`, correlation time `tau_s`) from a seeded mt19937_64 and
/// our own Box-Muller transform, so the numbers do not depend on the
/// standard library's distributions.
class Noise {
public:
    Noise(std::uint64_t seed, double sigma, double tau_s);
    double step(double dt);
    double value() const { return x_; }

private:
    double gaussian();
    std::mt19937_64 rng_;
    double sigma_, tau_, x_ = 0;
    std::optional<double> spare_;
};

/// A household load per phase: base · profile[hour] + noise, never below 0.
struct LoadConfig {
    std::vector<double> base_w{400, 300, 300};  ///< per phase (the first n are used)
    std::vector<double> profile;                ///< 24 hourly factors; empty = 1.0 all day
    double noise_w = 30;                        ///< standard deviation
    double noise_time_s = 5;
    std::uint64_t seed = 1;
};

class Load {
public:
    Load(const LoadConfig& c, int phases);
    /// Advance by dt at time of day `hour`; returns the power per phase.
    const std::array<double, max_phases>& step(double dt, double hour);
    const std::array<double, max_phases>& power() const { return p_; }

private:
    LoadConfig c_;
    int phases_;
    std::vector<Noise> noise_;
    std::array<double, max_phases> p_{};
};

/// Linear interpolation in a table of voltages at SoC 0, 100/(n−1), …, 100 %.
double ocv(const std::vector<double>& table, double soc);

struct BatteryConfig {
    double capacity_ah = 200;
    double soc = 60;                 ///< initial %
    double r_internal = 0.01;        ///< Ω
    double charge_efficiency = 1.0;  ///< of the charge that goes in, what is stored (coulombic)
    /// Open-circuit voltage at 0, 10, …, 100 % (16-cell LFP by default).
    std::vector<double> ocv{46.0, 50.4, 51.6, 52.0, 52.3, 52.5, 52.7, 52.9, 53.1, 53.6, 55.0};
    double max_charge_voltage = 55.2;
    double max_charge_current = 100;
    double max_discharge_current = 150;
    double low_voltage = 46.5;
    double full_soc = 100;           ///< BMS stops charge at this SoC …
    double recharge_soc = 97;        ///< … and allows it again below this
    double empty_soc = 5;            ///< BMS stops discharge at this SoC …
    double rearm_soc = 8;            ///< … and allows it again above this
};

/// A battery with a simple BMS. Forced flags (fault injection) override the BMS.
class Battery {
public:
    explicit Battery(const BatteryConfig& c);

    double soc() const { return soc_; }
    void set_soc(double soc);
    double open_circuit_voltage() const { return ocv(c_.ocv, soc_); }
    /// Terminal voltage at the last step's current.
    double voltage() const { return open_circuit_voltage() + current_ * c_.r_internal; }
    double current() const { return current_; }
    double capacity() const { return c_.capacity_ah; }
    const BatteryConfig& config() const { return c_; }

    bool allow_charge() const { return !cut_off_ && (force_charge_ ? *force_charge_ : bms_charge_); }
    bool allow_discharge() const { return !cut_off_ && (force_discharge_ ? *force_discharge_ : bms_discharge_); }
    /// An external BMS's relay is open: the battery is off the DC bus (no
    /// current either way, both directions forbidden) until it closes.
    void set_cut_off(bool cut) { cut_off_ = cut; }
    bool cut_off() const { return cut_off_; }
    /// nullopt: the BMS decides.
    void force_allow_charge(std::optional<bool> v) { force_charge_ = v; }
    void force_allow_discharge(std::optional<bool> v) { force_discharge_ = v; }
    std::optional<bool> forced_charge() const { return force_charge_; }
    std::optional<bool> forced_discharge() const { return force_discharge_; }
    /// The limits the BMS publishes: 0 when not allowed.
    double charge_current_limit() const { return allow_charge() ? c_.max_charge_current : 0.0; }
    double discharge_current_limit() const { return allow_discharge() ? c_.max_discharge_current : 0.0; }
    /// The largest charge current now: the CCL, and the current at which the
    /// terminal voltage reaches `cv` (constant-voltage phase). ≥ 0.
    double max_charge_now(double cv) const;

    /// Take `current` (A, + = charge) for `dt` seconds: integrates the SoC
    /// (clamped to 0..100) and updates the BMS flags.
    void step(double current, double dt);

private:
    void update_bms();
    BatteryConfig c_;
    double soc_;
    double current_ = 0;
    bool bms_charge_ = true, bms_discharge_ = true;
    bool cut_off_ = false;
    std::optional<bool> force_charge_, force_discharge_;
};

struct MultiConfig {
    int phases = 1;
    double rating_w = 3000;     ///< per phase, both directions
    double tau_s = 1.5;         ///< first-order time constant
    double timeout_s = 60;      ///< no setpoint rewrite for this long → 0 W
    double efficiency = 0.95;   ///< each way
    double max_charge_current = 100;  ///< the charger's own limit /Dc/0/MaxChargeCurrent at start (A)
};

/// A limit a client (DVCC in systemcalc) wrote to the Multi: not written
/// yet, written with a value, or written invalid (no limit).
struct WrittenLimit {
    bool written = false;
    std::optional<double> value;
    void write(std::optional<double> v) { written = true, value = v; }
    /// The written value when one was written, else `otherwise`.
    double or_else(double otherwise) const { return written && value ? *value : otherwise; }
};

/// What DVCC writes to a Multi: /BatteryOperationalLimits/* (from the BMS,
/// never negative). A Multi keeps them in RAM until they are written again.
struct DvccLimits {
    WrittenLimit max_charge_voltage, max_charge_current, max_discharge_current, battery_low_voltage;
};

/// What limits the Multi from outside in one step.
struct MultiLimits {
    bool allow_charge = true;
    bool allow_discharge = true;
    double dc_charge_max = 1e9;     ///< A into the battery side the Multi may push (≥ 0)
    double dc_discharge_max = 1e9;  ///< A it may draw (≥ 0)
    std::array<double, max_phases> load{};  ///< for DisableFeedIn: never export
};

/// A Multi in ESS mode 3: per-phase AC-in power follows the setpoint with a
/// first-order response, limited by rating, mode, Hub4 flags and battery.
class Multi {
public:
    explicit Multi(const MultiConfig& c);
    int phases() const { return c_.phases; }
    const MultiConfig& config() const { return c_; }

    /// A client (re)wrote the setpoint of phase `phase` (0-based) at time `now_s`.
    void write_setpoint(int phase, double watts, double now_s);
    double setpoint(int phase) const { return setpoint_[phase]; }
    /// True when the setpoints went stale (no rewrite for timeout_s): target 0.
    bool fallen_back(double now_s) const;

    int mode = 3;                ///< 1 charger only, 2 inverter only, 3 on, 4 off
    DvccLimits dvcc;
    /// /Dc/0/MaxChargeCurrent: the charger's limit (A), writeable, RAM only.
    double dc_max_charge_current;
    /// The DC charge current the Multi allows itself (A, ≥ 0): its own limit
    /// and DVCC's MaxChargeCurrent.
    double charge_current_limit() const;
    /// /Settings/CGwacs/Hub4Mode: only 3 (external control) follows the setpoints; otherwise 0 W.
    int hub4_mode = 3;
    bool disable_charge = false;
    bool disable_feed_in = false;

    /// The target of phase `n` after every limit except the DC ones.
    double target(int n, double now_s, const MultiLimits& lim) const;
    /// Advance by dt at time now_s (the end of the step) with battery voltage `v`.
    void step(double dt, double now_s, double v, const MultiLimits& lim);

    double ac_in(int n) const { return p_[n]; }
    double ac_in_total() const;
    /// DC side (+ = into the battery) at voltage v.
    double dc_power() const;
    double dc_current(double v) const { return v > 0 ? dc_power() / v : 0.0; }

private:
    MultiConfig c_;
    std::array<double, max_phases> setpoint_{}, p_{};
    std::optional<double> last_write_;
};

struct SolarConfig {
    DailyCurve curve;
    double max_current = 60;  ///< the charger's own limit (A)
};

/// A solar charger: available PV from the curve, limited by its own maximum
/// and by the DVCC link values when they are set.
class Solar {
public:
    explicit Solar(const SolarConfig& c) : c_(c) {}
    const SolarConfig& config() const { return c_; }
    std::optional<double> link_current;  ///< /Link/ChargeCurrent
    std::optional<double> link_voltage;  ///< /Link/ChargeVoltage
    bool on = true;                      ///< /Mode 1 (4 = off)
    int network_mode = 0;                ///< /Link/NetworkMode (stored, not simulated)

    double available_power(double hour) const { return on ? c_.curve.power(hour) : 0.0; }
    /// The most it may deliver at battery voltage v and hour.
    double max_current(double hour, double v) const;
    double current() const { return i_; }
    double available_current() const { return avail_; }
    void set(double current, double available) { i_ = current; avail_ = available; }

private:
    SolarConfig c_;
    double i_ = 0, avail_ = 0;
};

struct Energy {
    double forward_kwh = 0, reverse_kwh = 0;
    void add(double watts, double dt) {
        if (watts >= 0) forward_kwh += watts * dt / 3.6e6;
        else reverse_kwh -= watts * dt / 3.6e6;
    }
};

struct SystemConfig {
    double start_hour = 12;
    double speedup = 1;
    double max_step_s = 0.1;  ///< physics sub-step
    MultiConfig multi;
    BatteryConfig battery;
    std::vector<SolarConfig> solar{SolarConfig{}};
    LoadConfig load;
};

/// The whole simulated installation.
class System {
public:
    explicit System(const SystemConfig& c);

    /// Advance simulated time by dt (split into sub-steps of at most max_step_s).
    void advance(double dt);
    double now() const { return t_; }
    double hour() const;
    int phases() const { return multi.phases(); }

    Multi multi;
    Battery battery;
    std::vector<Solar> solar;
    Load load;

    double pv_current() const;
    /// The Multi's DC current of the last sub-step (+ = into the battery), at
    /// the voltage the step used; battery current == pv_current() + this.
    double multi_dc_current() const { return i_multi_; }
    double grid(int n) const { return load.power()[n] + multi.ac_in(n); }
    /// Charge voltage the Multi regulates to: DVCC's MaxChargeVoltage once
    /// written, else the BMS's CVL (the sim doing DVCC's job itself).
    double charge_voltage() const { return multi.dvcc.max_charge_voltage.or_else(battery.config().max_charge_voltage); }
    std::array<Energy, max_phases> grid_energy;
    double pv_yield_kwh(std::size_t i) const { return yield_[i]; }

private:
    void substep(double dt);
    SystemConfig c_;
    double t_ = 0;
    double i_multi_ = 0;
    std::vector<double> yield_;
};

} // namespace moat::sim
