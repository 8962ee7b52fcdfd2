// The battery model on the loop: it owns the Battery (a new one when the
// cell count changes), feeds it what the link sessions read, and after every
// call does the same chores: a trip's relay-off request goes to the session,
// the model's log lines reach the log, the outputs are published in one
// batch, one timer is re-armed at the model's next deadline (so a reading
// that stops arriving puts the safe state on the bus on time), and the bus
// name is wanted once the model is first ready with real values. It also
// keeps the energy record in its state file.
#pragma once

#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <moat/log.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "battery.hpp"
#include "battery_service.hpp"
#include "cell_packet.hpp"
#include "msgpack.hpp"

namespace moat::bms {

class BmsBattery {
public:
    BmsBattery(Loop& loop, battery::Options options, std::string work_path, BatteryService& service, Logger log);

    const battery::Options& options() const { return opt_; }
    /// The model (nullopt until the first valid configuration).
    battery::Battery* model() { return model_ ? &*model_ : nullptr; }

    /// A checked configuration from a new fetch: set it, or make a new model
    /// when the cell count changed (the energy record moves over).
    void configure(const battery::BatteryConfig& config);

    /// Run `fn` on the model (when there is one) and do the chores.
    void with_model(const std::function<void(battery::Battery&, TimePoint now)>& fn);
    /// The link went down (or the plugin stops): the safe state at once.
    void link_down(const std::string& why);

    /// `rly {st: ...}` calls for the session to send, in order (a trip's
    /// off; ForceRelay, ReleaseRelay), and the event that wakes it.
    std::deque<std::optional<bool>> relay_requests;
    Event relay_wake;
    void request_relay(std::optional<bool> on) {
        relay_requests.push_back(on);
        relay_wake.set();
    }
    /// Configuration deltas for the controller (`sys.cfg`, rooted at its
    /// top), sent in order by the session; mode 1 also stores them.
    std::deque<std::pair<msgpack::Value, int>> config_writes;
    Event config_wake;
    void write_config(msgpack::Value delta, int mode) {
        config_writes.emplace_back(std::move(delta), mode);
        config_wake.set();
    }
    /// Set the first time the model is ready and not safe (the name may be requested).
    Event ready;

    /// The module settings of this session (ReadSettings), for the conversions.
    std::vector<cell::Settings> settings;
    /// Balancing thresholds we sent (nullopt: none), and the manual overrides.
    std::vector<std::optional<double>> balance_threshold;
    std::vector<bool> balance_forced;
    std::vector<std::optional<double>> balance_pwm;
    /// Each cell's own voltage offset (SetVoltageOffset), V, added to `cell.u.offset`.
    std::vector<double> cell_offset = std::vector<double>(battery::max_cells, 0.0);
    /// Set to wake the balancing pass early (SetBalanceVoltage).
    Event balance_wake;

    /// Read the state file (a damaged one is renamed aside) into the model's restore.
    void load_work();
    /// Write the energy record to the state file (atomically).
    void save_work();

private:
    void chores(TimePoint now);

    Loop& loop_;
    battery::Options opt_;
    std::string work_path_;
    BatteryService& service_;
    Logger log_;
    std::optional<battery::Battery> model_;
    std::optional<battery::SavedWork> saved_;  ///< read at start, given to the first model
    Timer deadline_;
};

/// The default state file: beside the configuration file.
std::string default_work_path(const std::string& config_file, const std::string& app);

} // namespace moat::bms
