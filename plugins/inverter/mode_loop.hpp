// Each mode's loop (inverter-control.md §12, §14, §18.8) without D-Bus: the
// sequence of readings, writes and settle triggers. The plugin provides the
// I/O through LoopIo; the tests provide a fake on a VirtualClock.
#pragma once

#include <vector>

#include <moat/loop.hpp>
#include <moat/task.hpp>
#include <moat/value.hpp>

#include "controller.hpp"
#include "inputs.hpp"
#include "modes.hpp"
#include "params.hpp"

namespace moat::inverter {

/// What a mode's loop needs from the outside.
class LoopIo {
public:
    virtual ~LoopIo() = default;
    /// The current inputs; waits while they are invalid.
    virtual Task<Inputs> inputs() = 0;
    /// Write the setpoints (Victron sign) to the Multi.
    virtual Task<void> write(std::vector<double> setpoints) = 0;
    /// Sleep `sleep`, then wait (bounded) for a change of the Multi's /Ac/ActiveIn/P.
    virtual Task<void> trigger(Duration sleep) = 0;
    /// A cycle was computed (GetState, DEBUG log of the rules that fired).
    virtual void record(const Cycle& c) = 0;
    /// A settle reading of p_inv (DEBUG "now <p>").
    virtual void reading(double p_inv) = 0;
    /// soc's and remote's state for GetState.
    virtual void soc_report(const SocReport& r) = 0;
    virtual void remote_report(const RemoteReport& r) = 0;
    /// Σ /Yield/Power of the solar chargers (remote).
    virtual double solar_p() = 0;
    /// analyze: the loop's clock; its progress (GetState `analyze`); its own end,
    /// a switch to `next` made by the supervisor (ModeSupervisor::hand_over).
    virtual TimePoint time_now() = 0;
    virtual void analyze_report(const Value::Dict& report) = 0;
    virtual void hand_over(Mode next, const Op& args) = 0;
};

class BmsIo;  // analyze.hpp

struct LoopTiming {
    Duration trigger_sleep;  ///< the settle loop's sleep per trigger
    Duration idle_sleep;     ///< idle's sleep between writes
};

/// One closed-loop step (§12): compute and write the target, take a reading
/// right after the write, await one trigger, then a trigger and a reading
/// until Settle stops; marks the controller running.
Task<void> apply_and_settle(Controller& ctl, LoopIo& io, const LoopTiming& timing, Target target);

/// A mode from its start (after the plugin's refusals): the controller
/// starts from the current p_inv, a closed-loop mode awaits one trigger
/// before its first output (§18.8), then the mode's loop (§14). `op` is read
/// on every round (SetModeParam changes it while the mode runs); remote
/// stores its state in it. Runs until cancelled; `off` writes once and waits.
/// analyze needs `bms` (std::logic_error without).
Task<void> run_mode(Controller& ctl, LoopIo& io, const LoopTiming& timing, Mode mode, Op& op, BmsIo* bms = nullptr);

} // namespace moat::inverter
