// The mode supervisor (inverter-control.md §15 [RECOMMEND], §18.2, §18.3,
// §18.5): one mode task at a time; every change goes through it (serialised),
// also a mode's own switch to its successor (analyze, §19 #11); the lock-out
// after a mode's start; validation of mode names and parameters; a mode that
// ends or fails falls back to off at 0 W, keeping the error; lost inputs stop
// the mode (safe setpoints) until they are back. Without D-Bus: the plugin
// provides the I/O through SupervisorIo; tested on a VirtualClock.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include <moat/log.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "params.hpp"

namespace moat::inverter {

/// A refused mode change; `kind` picks the D-Bus error name (§16.2).
struct ModeChangeError : std::runtime_error {
    /// too_early: within the lock-out after a mode start; unknown: no such
    /// mode, or the mode is refused; unknown_parameter: not a parameter of the
    /// mode; invalid_value: a parameter's value of the wrong type or range.
    enum class Kind { too_early, unknown, unknown_parameter, invalid_value };
    ModeChangeError(Kind k, const std::string& what) : std::runtime_error(what), kind(k) {}
    Kind kind;
};

/// Thrown by a mode that must end with the safe setpoints written before
/// off takes over (analyze lost the BMS it steers by); any other exception
/// ends the mode without them (off writes its 0 W at once).
struct ModeAbort : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// What the supervisor needs from the outside.
class SupervisorIo {
public:
    virtual ~SupervisorIo() = default;
    /// A mode's task from its start; runs until cancelled, may end or throw
    /// (both fall back to off). `op` lives while it runs; changes to it are
    /// parameter changes the mode picks up on its next round.
    virtual Task<void> run_mode(Mode mode, Op& op) = 0;
    /// Write the safe setpoints (§18.1) on every phase.
    virtual Task<void> write_safe(const char* why) = 0;
    /// The phase count to check a `phase` parameter against.
    virtual int n_phase() = 0;
    /// Mode, parameters, error or running state changed (export them).
    virtual void changed() = 0;
    /// Each turn of the supervisor's loop (the plugin's fault point).
    virtual void turn() {}
};

class ModeSupervisor {
public:
    ModeSupervisor(SupervisorIo& io, Clock& clock, Logger log, Duration lockout, Mode start, ModeDefaults defaults);

    /// Runs until cancelled; the mode task is a child of it.
    Task<void> run();

    /// Checks a mode change (lock-out, name, arguments) without making it; the
    /// mode and whether it differs from the current (or pending) one.
    std::pair<Mode, bool> check_change(const std::string& name, const Op& args) const;
    /// SetMode: validates, then switches (another mode) or updates the
    /// parameters (the same mode). Throws ModeChangeError.
    void change_mode(const std::string& name, const Op& args);
    /// SetModeParam on the current (or pending) mode. Throws ModeChangeError.
    void change_param(const std::string& name, const ParamValue& value);
    /// Checks one parameter of the current (or pending) mode; the reason, or nullopt.
    std::optional<std::string> check_param(const std::string& name, const ParamValue& value) const;

    /// The guard's verdict (§18.3): false stops the mode and writes the safe
    /// setpoints; true (re)starts the mode.
    void set_inputs_ok(bool ok);
    bool inputs_ok() const { return inputs_ok_; }
    /// Restart the running mode, e.g. with the low-battery clamp (§18.5),
    /// after writing the safe setpoints when `safe_first`. Requests made before
    /// the supervisor's next turn merge (a safe one stays safe).
    void restart(std::string why, bool safe_first);
    /// End the running mode for `why` and switch to off at 0 W, keeping `why`
    /// as the error (§18.2, §18.6), after the safe setpoints when `safe_first`.
    void fall_back(const std::string& why, bool safe_first);
    /// The running mode's own end (analyze's last step): switch to `next` with
    /// `args` on the supervisor's next turn, which stops the calling mode (it
    /// must not end by itself before that). Not subject to the lock-out (it is
    /// no request from outside); ignored when a change is already pending.
    /// Throws std::invalid_argument for arguments check_param refuses.
    void hand_over(Mode next, const Op& args, const std::string& why);

    Mode mode() const { return mode_; }
    const Op& op() const { return op_; }
    std::optional<Mode> pending() const { return pending_mode_; }
    /// The mode (and its parameters) that runs or is about to run.
    Mode target() const { return pending_mode_.value_or(mode_); }
    const Op& target_op() const { return pending_mode_ ? pending_op_ : op_; }
    const std::string& error() const { return error_; }
    bool ever_started() const { return ever_started_; }
    /// Left of the lock-out, 0 when changes are allowed (nullopt before the first
    /// start). It counts from the last start of another mode: a restart of the
    /// same mode (inputs back, a restart request) does not renew it.
    std::optional<Duration> lockout_left() const;

private:
    Task<void> mode_task(Mode mode, std::uint64_t generation);
    void mode_ended(std::uint64_t generation, const std::string& error, bool safe_first);

    SupervisorIo& io_;
    Clock& clock_;
    Logger log_;
    Duration lockout_;
    ModeDefaults defaults_;

    Mode mode_;
    Op op_;
    std::optional<Mode> pending_mode_;
    Op pending_op_;
    std::uint64_t generation_ = 0;
    TimePoint mode_started_{};
    bool ever_started_ = false;
    bool inputs_ok_ = false;
    std::string restart_;       ///< restart the running mode, for this reason
    bool restart_safe_ = false; ///< ... after writing the safe setpoints
    std::string error_;
    Event wake_;
};

} // namespace moat::inverter
