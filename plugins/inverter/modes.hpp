// The per-cycle computation of each mode (inverter-control.md §14), without
// I/O: from the mode's parameters and the inputs to a Target for
// Controller::cycle(). The loops, sleeps and settling belong to the caller.
#pragma once

#include <optional>

#include "controller.hpp"
#include "inputs.hpp"
#include "params.hpp"

namespace moat::inverter {

/// A parameter of `mode` from `op`, or its built-in default when absent.
ParamValue param(const Op& op, Mode mode, std::string_view name);

/// off, idle: Target::fixed(power). p_grid: grid_p(power, excess).
/// p_inv: inv_p(power, excess, phase). i_batt: batt_i(current).
/// Throws std::logic_error for soc, remote and analyze (they have state or steps).
Target simple_target(Mode mode, const Op& op);

// ---------------------------------------------------------------- soc (§14.6)

/// GetState's `to_soc`.
struct SocReport {
    double now = 0;
    double dest = 0;
    double delta = 0;            ///< dest - now; 0 inside the +-0.02 band
    std::optional<double> power; ///< the grid power chosen; nullopt when holding the battery at 0 A
};

/// The first step of every round [QUIRK, literal]: calc_grid_p(power_in, excess),
/// whatever the SoC; the round's second step is soc_target().
Target soc_first_target(const Op& op);
/// Within 0.02 of dest_soc: battery current 0; below: grid power power_in;
/// above: grid power power_out. `excess` is a parameter of the mode (fix #9).
Target soc_target(const Op& op, double soc, SocReport* report = nullptr);

// ---------------------------------------------------------------- remote (§14.7)

/// The remote mode's parameters after clamping.
struct RemoteParams {
    double power = 0, power_ref = 0;
    std::optional<double> power_override;
    double power_low = 0;
    bool low_grid = true;
    double limit = 1;
    double soc_low_zero = 0, soc_low = 0, soc_low_ok = 0, soc_high = 0, soc_high_ok = 0;
    int state = 3;  ///< `mode`: 0 normal, 1 empty, 2 low, 3 full
};

/// Read and clamp the parameters; the clamped values are written back into
/// `op` as the original's getters do ([QUIRK, literal]: soc_high_ok is at
/// least soc_high - 0.02). power_override -1 removes the override.
RemoteParams remote_params(Op& op);

/// The state machine: three rule pairs applied one after the other, each
/// seeing the previous result; all comparisons inclusive.
int remote_state(int state, double soc, const RemoteParams& rp);

/// GetState's `remote`.
struct RemoteReport {
    int mode = 0;
    double p_want = 0;               ///< export target before the limit factor
    std::optional<double> ip;        ///< direct inverter power, when used
    std::optional<double> exc;       ///< excess passed to calc_grid_p, when used
};

/// The action for `state`: 1, or 2 without low_grid: charge with power_low;
/// 2 with low_grid: inverter = min(solar_p, consumption); 3: export
/// max(PV surplus, power); 0: export power. A power_override wins. Without
/// a direct inverter power: calc_grid_p(-p*L, excess = (power_ref - p)*L),
/// else calc_inv_p(ip, excess = 0). Without DistKV, P = power and L = limit.
Target remote_target(int state, const RemoteParams& rp, const Inputs& in, double solar_p,
                     RemoteReport* report = nullptr);

/// One cycle of the remote mode: clamp the parameters, advance the state
/// from the battery's SoC, store it in op["mode"], return the target.
Target remote_step(Op& op, const Inputs& in, double solar_p, RemoteReport* report = nullptr);

} // namespace moat::inverter
