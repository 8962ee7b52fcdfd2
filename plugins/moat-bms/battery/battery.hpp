// The battery model: fed with the controller's pack readings and the ring's
// cell readings (each with the time it arrived) and with the link's ups and
// downs, it decides what the Victron system is told: the limits, the allow
// flags, the alarms and, for every fault, the safe state. It does no I/O and
// reads no clock: the caller passes the time, and arms a timer for
// next_deadline() so a reading that stops arriving is noticed on time.
#pragma once

#include <array>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <moat/loop.hpp>

#include "battery_config.hpp"
#include "limits.hpp"
#include "work.hpp"

namespace moat::bms::battery {

/// One module's voltage reply, converted (nullopt: no valid reading).
struct CellReading {
    std::optional<double> volts;
    bool in_balance = false;  ///< bit 15
    bool load_hot = false;    ///< bit 14
};
struct CellTemperature {
    std::optional<double> load_c, cell_c;  ///< on-board (load) and cell thermistors
};
/// The controller's `info` reply.
struct PackReading {
    double volts = 0, amps = 0;  ///< amps: + = charging
    bool relay_on = false;
};

enum class Alarm {
    LowVoltage, HighVoltage, LowCellVoltage, HighCellVoltage, HighChargeCurrent, HighDischargeCurrent,
    InternalFailure, HighTemperature, LowChargeTemperature, count
};
inline constexpr std::size_t alarm_count = std::size_t(Alarm::count);
/// The D-Bus leaf under /Alarms/ ("HighCellVoltage").
const char* alarm_name(Alarm a);

/// Why the safe state holds (none: it does not).
enum class SafeReason { none, no_link, session_starting, stale_pack, stale_cells };
const char* to_string(SafeReason r);

/// Everything the battery service publishes that the model decides.
struct Outputs {
    bool safe = true;
    SafeReason reason = SafeReason::no_link;
    bool allow_charge = false, allow_discharge = false;
    double max_charge_current = 0, max_discharge_current = 0;  ///< A, both positive
    std::optional<double> max_charge_voltage, low_voltage;     ///< stay valid in the safe state
    bool connected = false;
    int state = 10, error = 12;  ///< 9 / 0 normally; 10 / 12 in the safe state
    std::array<std::optional<int>, alarm_count> alarms{};  ///< 0 ok, 1 warning, 2 alarm; nullopt invalid
    std::optional<double> dc_voltage, dc_current, dc_power;     ///< invalid in the safe state
    std::optional<double> temperature;                          ///< mean cell thermistor, °C
    struct TempExtreme {
        double celsius;
        int cell;
    };
    std::optional<TempExtreme> temp_min, temp_max;              ///< cell thermistors
    std::optional<double> soc;                                  ///< 0‥1
    std::optional<CellStats> cells;                             ///< from the last valid readings
    std::optional<MidVoltage> mid;
    int blocking_charge = 0, blocking_discharge = 0;            ///< 100 × cells + pack, as published
    bool balancing = false;                                     ///< any cell reports bit 15
};

struct LogLine {
    enum class Level { info, warning, error } level;
    std::string text;
};

class Battery {
public:
    Battery(BatteryConfig config, Options options);

    // --- the link (one session after the other) ---
    /// A new session is up; the safe state holds until it is ready with fresh data.
    /// A relay we forced off is requested off again (the controller may have restarted).
    void link_up(TimePoint now);
    /// The plugin finished the start-up sequence of this session (identify, level 0, settings, PID).
    void session_started(TimePoint now);
    void keepalive_sent(TimePoint now);
    /// EOF, port gone, `link false`, an RPC timeout, the resync limit: the safe state at once.
    void link_down(TimePoint now, const std::string& why);

    // --- readings ---
    void on_pack(TimePoint now, const PackReading& r);
    /// One voltage read of the ring, one entry per cell (fewer: the rest had no reply).
    void on_cells(TimePoint now, std::span<const CellReading> cells);
    void on_temperatures(TimePoint now, std::span<const CellTemperature> temps);
    /// An energy push or an `info {r: true}`: `ws` W·s over `seconds`.
    void on_work(double ws, double seconds);

    /// Re-check the deadlines. Call it at next_deadline() (and whenever convenient).
    void tick(TimePoint now);
    /// When tick() must run next (the first staleness limit after `now`), so
    /// a reading that stops arriving puts the safe state on the bus no later
    /// than its limit; nullopt: nothing can go stale (no link).
    std::optional<TimePoint> next_deadline(TimePoint now) const;

    // --- relay (ForceRelay / ReleaseRelay) ---
    void force_relay(TimePoint now, bool on);
    /// Clears the trip latches; a condition that persists trips again at the next reading.
    void release_relay(TimePoint now);
    /// `rly {st: false}` to send now: set by a trip, on every evaluation while it persists.
    bool take_relay_off_request();
    /// Forced off by ForceRelay(false) or a trip (until ForceRelay(true) / ReleaseRelay).
    bool relay_forced_off() const { return relay_forced_off_; }

    // --- energy and capacity ---
    /// A saved record (nullopt, or older than work_max_age_s: seeded from the cell zones at the first reading).
    void restore_work(const std::optional<SavedWork>& saved, double now_unix_s);
    const std::optional<WorkRecord>& work() const { return work_; }
    bool set_work(double ws);
    bool set_capacity(double cap, double loss, bool top);
    /// GetWork(clear): the record, then a fresh one when `clear`.
    std::optional<WorkRecord> get_work(bool clear);

    // --- state ---
    const Outputs& outputs() const { return out_; }
    bool ready() const;  ///< this session saw keepalive, cells, temperatures and pack values once
    bool balancing_allowed() const { return !out_.safe; }
    const BatteryConfig& config() const { return cfg_; }
    void set_config(const BatteryConfig& c);  ///< a new fetch (same n)
    std::span<const std::optional<double>> cell_volts() const { return volts_; }
    std::span<const CellTemperature> cell_temperatures() const { return temps_; }
    const std::vector<bool>& cell_in_balance() const { return in_balance_; }
    std::optional<PackReading> pack() const { return pack_; }
    /// Log lines since the last call (trips once per latch, warnings once).
    std::vector<LogLine> take_log();

private:
    void evaluate(TimePoint now);
    SafeReason safe_reason(TimePoint now) const;
    bool pack_fresh(TimePoint now) const;
    bool cell_fresh(TimePoint now, int i) const;
    void trip(Alarm a, const std::string& what);
    void log(LogLine::Level l, std::string text) { log_.push_back({l, std::move(text)}); }
    std::optional<std::vector<double>> all_volts() const;

    BatteryConfig cfg_;
    Options opt_;
    CellThresholds thr_;

    bool link_ = false, started_ = false, keepalive_ = false, got_pack_ = false, got_cells_ = false, got_temps_ = false;
    TimePoint session_start_{};
    bool msg_pack_hi_ = false, msg_pack_lo_ = false;
    std::optional<PackReading> pack_;
    std::optional<TimePoint> pack_at_;
    std::vector<std::optional<double>> volts_;
    std::vector<std::optional<TimePoint>> cell_at_;  ///< last valid reading per cell
    std::vector<bool> in_balance_;
    std::vector<CellTemperature> temps_;
    std::vector<bool> hi_flag_, lo_flag_;

    LimitMemory umax_{true}, umin_{false};
    std::optional<TimePoint> last_cycle_;

    bool relay_forced_off_ = false;
    std::array<bool, alarm_count> latched_{};
    bool relay_off_request_ = false;
    bool warned_no_temps_ = false, warned_sum_ = false;

    std::optional<WorkRecord> work_;
    bool anchored_ = true;

    Outputs out_;
    SafeReason last_reason_ = SafeReason::no_link;
    std::vector<LogLine> log_;
};

} // namespace moat::bms::battery
