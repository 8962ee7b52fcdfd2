// The Multi's per-phase AC setpoints (/Hub4/L<n>/AcPowerSetpoint): the modes'
// writes, the safe setpoints and the refresh (§18.1, §18.4, §18.7).
//
// The newest write wins. A write that is still going from phase to phase when
// a newer one starts stops before its next phase, so a refresh or a mode's
// write begun before the safe setpoints can never overwrite them. What it had
// already sent travels ahead of the newer write on the one bus connection.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <moat/log.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "guard.hpp"

namespace moat::inverter {

/// What the writer needs from the plugin.
struct SetpointIo {
    virtual ~SetpointIo() = default;
    /// §18.4, looked at right before every write.
    virtual GuardDecision guard_now() = 0;
    /// The Multi's service, "" when unknown.
    virtual std::string vebus() = 0;
    /// SetValue on the Multi: its reply (0: accepted), -1 when none came in `timeout`.
    virtual Task<int> set_value(std::string service, std::string path, double value, Duration timeout) = 0;
    /// MOAT_FAULT's named points.
    virtual void fault_point(const char* name) = 0;
    /// Something GetState or the Venus items show has changed.
    virtual void changed() = 0;
};

class SetpointWriter {
public:
    /// `fake`: log what would be written, write nothing. `stop_write_timeout`
    /// bounds each phase of a safe write.
    SetpointWriter(SetpointIo& io, Clock& clock, Logger log, bool fake, Duration stop_write_timeout);

    /// A mode's write, phase after phase. `fault`: the fault point between the
    /// first two phases.
    Task<void> write(std::vector<double> setpoints, Duration timeout, const char* fault = nullptr);
    /// The safe setpoints on every phase in parallel, each bounded by
    /// stop_write_timeout; safe_state() says whether they were confirmed.
    /// They go where the guard's may_write_safe allows, to the last known
    /// Multi when the system service no longer names one.
    Task<void> write_safe(std::vector<double> setpoints);
    /// §18.7 forever: the last setpoints again when nothing was written for
    /// `interval`; a write the guard kept back is made up for once allowed.
    /// Nothing while `inputs_ok()` is false.
    Task<void> refresh(Duration interval, std::function<bool()> inputs_ok);

    bool fake() const { return fake_; }
    const std::vector<double>& last_written() const { return last_written_; }
    /// "" before the first safe write, "reached", or "not reached: <phases and why>".
    const std::string& safe_state() const { return safe_state_; }

private:
    /// The Multi to write: the one the system service names, else the last known.
    std::string target();
    /// Starts a write: false (and kept for later) when the guard forbids it
    /// (`safe`: the safe setpoints, judged by may_write_safe).
    bool begin(std::vector<double>& setpoints, bool safe);
    Task<void> write_phase(std::string vb, std::size_t k, double value, std::string& failed);

    SetpointIo& io_;
    Clock& clock_;
    Logger log_;
    bool fake_;
    Duration stop_write_timeout_;
    /// Counts the writes begun; a write whose number is no longer the newest stops.
    std::uint64_t generation_ = 0;
    std::vector<double> last_written_;
    std::optional<TimePoint> last_write_;
    /// Setpoints the guard kept from the Multi (e.g. Hub4Mode not yet known).
    std::optional<std::vector<double>> skipped_;
    std::string last_skip_;
    std::string safe_state_;
    /// The Multi's service as last named: the safe setpoints' target when the
    /// system service is gone.
    std::string last_vebus_;
};

} // namespace moat::inverter
