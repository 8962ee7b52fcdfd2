// The analyze mode (inverter-control.md §14.8, with the §19 #11 fixes): a
// capacity test steered by the MoaT BMS's cell voltages and energy counters.
// Steps: 0 top balance (top_off while it runs), 1 below the top, 2 charge,
// 3 discharge (measured), 4 recharge (measured), 5 SetCapacity on the BMS,
// 6 hand over to p_inv/p_grid at 0 W (off when skipped past the end). Each
// wait loop is one closed-loop cycle per round and ends after the end
// condition held on 4 rounds in a row. Without D-Bus: the BMS is a BmsIo, the
// rest the mode loop's LoopIo; tested with scripted readings on a VirtualClock.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <moat/task.hpp>
#include <moat/value.hpp>

#include "controller.hpp"
#include "mode_loop.hpp"
#include "params.hpp"

namespace moat::inverter {

/// The cell limits analyze works with, from the BMS's GetConfig (V):
/// `cell.u.lim.{min,max}`, `cell.u.ext.{min,max}` and `cell.balance.d`.
struct CellLimits {
    double lim_min = 0, lim_max = 0, ext_min = 0, ext_max = 0;
    double balance_d = 0;  ///< balancing tolerance; the spread test uses 3·d
    bool operator==(const CellLimits&) const = default;
};

/// The limits in the BMS's whole configuration (GetConfig on /bms); throws
/// std::invalid_argument naming a missing or non-numeric key, or limits out of
/// order (ext.min < lim.min < lim.max < ext.max, d > 0 are required: the
/// step thresholds lie between them).
CellLimits cell_limits(const Value& config);

/// The lowest and highest cell voltage of battery 0 (V).
struct CellVoltages {
    double min_cell = 0, max_cell = 0;
};

/// Battery 0's work record (GetWork): energy charged and discharged, W·s.
struct Work {
    double chg = 0, dis = 0;
};

/// The MoaT BMS as analyze uses it (the org.m_o_a_t.bms interface of the
/// battery service). Every call throws when the BMS cannot answer (the plugin
/// throws ModeAbort: the mode then ends with the safe setpoints first).
class BmsIo {
public:
    virtual ~BmsIo() = default;
    /// /bms GetConfig, read again every round (the BMS's config may change).
    virtual Task<CellLimits> limits() = 0;
    /// /bms GetVoltages()[0]: min_cell, max_cell.
    virtual Task<CellVoltages> voltages() = 0;
    /// /bms GetWork(poll, clear)[0].
    virtual Task<Work> work(bool poll, bool clear) = 0;
    /// /bms/0 SetCapacity(cap, loss, top); the BMS's answer.
    virtual Task<bool> set_capacity(double cap, double loss, bool top) = 0;
    /// Completes when the BMS went away (its bus name left or changed hands): why.
    virtual Task<std::string> lost() = 0;
};

// ---------------------------------------------------------------- the decisions

/// The steps that wait for the cells.
enum class AnalyzeStep { balance, below_top, charge, discharge, recharge };
std::string_view to_string(AnalyzeStep step);

/// Step 0: the lowest cell at or above (lim.max + ext.max) / 2.
double balance_floor(const CellLimits& l);
/// Step 1: the highest cell below 2·lim.max − ext.max (as far below lim.max as ext.max is above it).
double below_top_ceiling(const CellLimits& l);
/// Steps 2 and 4: the lowest cell above lim.max − (ext.max − lim.max) / 3.
double top_floor(const CellLimits& l);
/// Step 3: the lowest cell below lim.min + (lim.min − ext.min) / 3.
double bottom_ceiling(const CellLimits& l);

/// Whether a step's end condition holds for these cells, with the report's
/// words: `done` ("OK", "LOW") when it holds, else `wait` (what is missing).
struct StepCheck {
    bool met = false;
    std::string label;
};
/// balance: min_cell ≥ balance_floor and max_cell − min_cell < 3·d (the
/// original's spread test was inverted, §19 #11); below_top: max_cell <
/// below_top_ceiling ("OK") or min_cell < ext.min ("LOW"); charge/recharge:
/// min_cell > top_floor; discharge: min_cell < bottom_ceiling.
StepCheck check_step(AnalyzeStep step, const CellLimits& l, const CellVoltages& v);

/// Why p_dis cannot discharge (nullopt: it can): with use_grid it is a grid
/// power and must be negative (export); without, an inverter power and must be
/// positive.
std::optional<std::string> p_dis_sign_problem(double p_dis, bool use_grid);

/// Step 5: loss = 1 − (e_dis + e_dis_c) / (e_chg + e_chg_d + 1) (the +1 W·s
/// keeps it finite when nothing was charged).
double loss_factor(double e_dis, double e_dis_c, double e_chg, double e_chg_d);

/// A `[inverter] bms_service` value that is not a battery service name
/// (com.victronenergy.battery.<suffix>): the reason; "" (use the system's
/// battery service) and good names give nullopt.
std::optional<std::string> bms_service_problem(std::string_view name);

// ---------------------------------------------------------------- the run

/// The whole test, from the sign check to the hand-over; `op` is read every
/// round (SetModeParam). Reports its progress through io.analyze_report, hands
/// over through io.hand_over and then waits to be stopped. Throws
/// std::runtime_error for a wrong p_dis sign (the supervisor falls back to
/// off) and ModeAbort when the BMS went away (safe setpoints, then off).
/// Restores the controller's top_off after step 0, also when cancelled.
Task<void> run_analyze(Controller& ctl, LoopIo& io, BmsIo& bms, const LoopTiming& timing, Op& op);

} // namespace moat::inverter
