// Current/power conversion (inverter-control.md §6) and the limit chain that
// clamps a requested inverter power against battery, PV and AC limits (§7).
// All quantities in controller sign (see inputs.hpp).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "inputs.hpp"
#include "params.hpp"

namespace moat::inverter {

/// DC current for AC power `p` at DC voltage `u` with one-way efficiency `eff`.
/// Starts from x = -p/u; the magnitude is divided by eff when (rev and x < 0)
/// or (!rev and x >= 0), multiplied otherwise. With rev = true this is the DC
/// current an AC power needs or yields: 1000 W at 52 V, 0.9 -> -21.37 A;
/// -1000 W -> +17.31 A.
double i_from_p(double p, double u, double eff, bool rev);
/// AC power for DC current `i`: y = -i*u, divided by eff when (rev and y > 0)
/// or (!rev and y <= 0), multiplied otherwise. p_from_i(i_from_p(p, true), false) == p.
double p_from_i(double i, double u, double eff, bool rev = false);

/// The rules of the chain, in execution order, plus the port's additions.
enum class Rule {
    I_PVD,        ///< 1: PV headroom on the discharge side
    U_MAX,        ///< 2: upper voltage taper
    U_MIN,        ///< 3: lower voltage taper
    I_MAX,        ///< 4: PV headroom below the DVCC charge limit
    P_MIN,        ///< 5: pg_min
    P_MAX,        ///< 6: pg_max
    I_MIN,        ///< 7: PV may collapse: discharge limit against a PV minimum
    IB_ERR_L,     ///< 8: BMS charge current limit
    IB_ERR_H,     ///< 9: BMS discharge current limit
    P_EXC,        ///< 10: cap at request + excess
    FINAL_CLAMP,  ///< D3: total back into [pg_min, pg_max]
    P_GRAD,       ///< §7.1 rate limiting (D4)
    LOW_BATT,     ///< §18.5 the inverter may not discharge a low battery
};
std::string_view to_string(Rule rule);

/// One rule that fired, for GetState (§16.5) and the DEBUG log (§17).
struct LimitEntry {
    Rule rule;
    /// The rule's operands by their GetState names (pvmax, ib, udc, ...).
    std::vector<std::pair<std::string, double>> values;
    std::string lim;  ///< the condition, as text
    std::string fix;  ///< the action, as text
    double res = 0;   ///< the result (the quantity the action set)
    /// P_GRAD only: [pd, last_p, p, np].
    std::vector<double> step;
};
/// One line, e.g. "U_MAX: i_batt < i_maxchg -> i_batt = i_maxchg; res=14 (umax=56 udc=55.6 ...)".
std::string describe(const LimitEntry& entry);

/// The PV state the chain needs besides the inputs (§13.2).
struct PvLimits {
    double i_pv_max = 0;    ///< tracked PV maximum, A
    double pv_margin = 0.4; ///< fraction of it assumed to stay available
};

struct ChainResult {
    double p = 0;                    ///< destination power after every rule
    std::vector<LimitEntry> limits;  ///< the rules that fired, in order
};

/// The limit chain of §7, rules 1-10 in this exact order, then the final
/// clamp to [pg_min, pg_max] (D3). `excess` nullopt = no P_EXC cap.
/// Literal ports, on purpose ([QUIRK] in §7):
///  * I_PVD updates only i_batt (i_inv is not recomputed); algebraically its
///    condition is ib_max + i_pv < pv_delta. It acts only through the later
///    rules that start from i_batt (U_MAX/U_MIN/I_MAX/IB_ERR_*): it can make
///    them fire, and it can also keep IB_ERR_H from firing, which lets the
///    battery discharge above ib_max (see the test "I_PVD can mask IB_ERR_H").
///  * I_MAX subtracts d from i_batt, which lowers the inverter's charging and
///    with it pvlim — the opposite of the original comment's intent ("leave a
///    margin for the solar chargers"); IB_ERR_L usually clamps it back.
///  * P_MIN/P_MAX recompute only i_inv, so IB_ERR_L/H run on the earlier i_batt.
///  * P_EXC: excess -1 is a real number (cap at request - 1), not "unlimited".
/// Unlike the original, IB_ERR_L/H are recorded too (§17: every rule that fired
/// is logged).
ChainResult limit_chain(double p, std::optional<double> excess, const Inputs& in, const SystemParams& sp,
                        const PvLimits& pv);

} // namespace moat::inverter
