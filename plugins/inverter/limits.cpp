#include "limits.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace moat::inverter {

double i_from_p(double p, double u, double eff, bool rev) {
    double x = -p / u;
    bool divide = rev ? x < 0 : x >= 0;
    return divide ? x / eff : x * eff;
}

double p_from_i(double i, double u, double eff, bool rev) {
    double y = -i * u;
    bool divide = rev ? y > 0 : y <= 0;
    return divide ? y / eff : y * eff;
}

std::string_view to_string(Rule rule) {
    switch (rule) {
    case Rule::I_PVD: return "I_PVD";
    case Rule::U_MAX: return "U_MAX";
    case Rule::U_MIN: return "U_MIN";
    case Rule::I_MAX: return "I_MAX";
    case Rule::P_MIN: return "P_MIN";
    case Rule::P_MAX: return "P_MAX";
    case Rule::I_MIN: return "I_MIN";
    case Rule::IB_ERR_L: return "IB_ERR_L";
    case Rule::IB_ERR_H: return "IB_ERR_H";
    case Rule::P_EXC: return "P_EXC";
    case Rule::FINAL_CLAMP: return "FINAL_CLAMP";
    case Rule::P_GRAD: return "P_GRAD";
    case Rule::LOW_BATT: return "LOW_BATT";
    }
    return "?";
}

std::string describe(const LimitEntry& e) {
    std::string s = fmt::format("{}: {} -> {}; res={:.2f}", to_string(e.rule), e.lim, e.fix, e.res);
    if (!e.values.empty()) {
        s += " (";
        for (std::size_t i = 0; i < e.values.size(); ++i)
            s += fmt::format("{}{}={:.2f}", i ? " " : "", e.values[i].first, e.values[i].second);
        s += ")";
    }
    if (!e.step.empty()) s += fmt::format(" step=[{:.2f}]", fmt::join(e.step, ", "));
    return s;
}

ChainResult limit_chain(double p, std::optional<double> excess, const Inputs& in, const SystemParams& sp,
                        const PvLimits& pv) {
    ChainResult out;
    auto fired = [&](Rule rule, std::vector<std::pair<std::string, double>> values, const char* lim, const char* fix,
                     double res) { out.limits.push_back({rule, std::move(values), lim, fix, res, {}}); };

    const double u = in.u_dc(sp.r_int), eff = sp.inv_eff;
    const double i_pv = in.i_pv(), ib_max = in.ib_max(), ib_min = in.ib_min();
    const double cap_lim = in.b_cap() / sp.cap_scale;  // C-rate scale of the tapers
    const double op = p;

    double i_inv = i_from_p(p, u, eff, true);
    double i_batt = -i_inv - i_pv;

    // 1 I_PVD [QUIRK, literal]: i_inv is not recomputed.
    if (pv.i_pv_max > sp.pv_delta && (ib_max - i_inv) - i_batt < sp.pv_delta) {
        double before = i_batt;
        i_batt = (ib_max - i_inv) - sp.pv_delta;
        fired(Rule::I_PVD, {{"pvmax", pv.i_pv_max}, {"pvdelta", sp.pv_delta}, {"imax", ib_max}, {"inv", i_inv}, {"ib", before}},
              "(ib_max - i_inv) - i_batt < pv_delta", "i_batt = (ib_max - i_inv) - pv_delta", i_batt);
    }
    // 2 U_MAX: charge-current ceiling falling to 0 A at u_max - umax_diff (u_max with top_off).
    {
        double a = sp.top_off ? 0.0 : sp.umax_diff;
        double i_maxchg = cap_lim * (a - (in.u_max() - u)) / sp.umax_diff;
        if (i_batt < i_maxchg) {
            double before = i_batt;
            i_batt = i_maxchg;
            i_inv = -i_batt - i_pv;
            fired(Rule::U_MAX, {{"umax", in.u_max()}, {"udc", u}, {"range", sp.umax_diff}, {"cap_lim", cap_lim},
                                {"max", i_maxchg}, {"ib", before}},
                  "i_batt < i_maxchg", "i_batt = i_maxchg; i_inv = -i_batt - i_pv", i_batt);
        }
    }
    // 3 U_MIN: the mirror at u_min + umin_diff.
    {
        double i_maxdis = -cap_lim * (sp.umin_diff - (u - in.u_min())) / sp.umin_diff;
        if (i_batt > i_maxdis) {
            double before = i_batt;
            i_batt = i_maxdis;
            i_inv = -i_batt - i_pv;
            fired(Rule::U_MIN, {{"umin", in.u_min()}, {"udc", u}, {"range", sp.umin_diff}, {"cap_lim", cap_lim},
                                {"min", i_maxdis}, {"ib", before}},
                  "i_batt > i_maxdis", "i_batt = i_maxdis; i_inv = -i_batt - i_pv", i_batt);
        }
    }
    // 4 I_MAX [QUIRK, literal]: d is subtracted from i_batt.
    {
        double pvlim = -ib_min - i_inv;  // what DVCC lets the MPPTs deliver
        if (pvlim - i_pv < sp.pv_delta) {
            double d = sp.pv_delta - (pvlim - i_pv);
            double before = i_batt, inv_before = i_inv;
            i_batt -= d;
            i_inv = -i_batt - i_pv;
            fired(Rule::I_MAX, {{"ibmin", ib_min}, {"inv", inv_before}, {"ipv", i_pv}, {"pvdelta", sp.pv_delta},
                                {"d", d}, {"ib", before}},
                  "(-ib_min - i_inv) - i_pv < pv_delta", "i_batt -= d; i_inv = -i_batt - i_pv", i_batt);
        }
    }

    p = p_from_i(i_inv, u, eff);
    // 5, 6: AC limits of the Multi (charger, inverter).
    if (p < sp.pg_min) {
        fired(Rule::P_MIN, {{"p", p}, {"min", sp.pg_min}}, "p < pg_min", "p = pg_min", sp.pg_min);
        p = sp.pg_min;
    }
    if (p > sp.pg_max) {
        fired(Rule::P_MAX, {{"p", p}, {"max", sp.pg_max}}, "p > pg_max", "p = pg_max", sp.pg_max);
        p = sp.pg_max;
    }
    i_inv = i_from_p(p, u, eff, true);

    // 7 I_MIN: if PV collapsed to pv_margin of its maximum, the battery must
    // still stay within its discharge limit.
    {
        double pvmin = pv.i_pv_max * pv.pv_margin;
        if (-i_inv - pvmin > ib_max) {
            double before = i_inv;
            i_inv = -pvmin - ib_max;
            i_batt = -i_inv - i_pv;
            fired(Rule::I_MIN, {{"pvmax", pv.i_pv_max}, {"margin", pv.pv_margin}, {"inv", before}, {"max", ib_max}},
                  "-i_inv - i_pv_max * pv_margin > ib_max", "i_inv = -pvmin - ib_max; i_batt = -i_inv - i_pv", i_inv);
        }
    }
    // 8, 9: the BMS's current limits.
    if (i_batt < ib_min) {
        fired(Rule::IB_ERR_L, {{"ib", i_batt}, {"min", ib_min}}, "i_batt < ib_min", "i_batt = ib_min; i_inv = -i_batt - i_pv",
              ib_min);
        i_batt = ib_min;
        i_inv = -i_batt - i_pv;
    }
    if (i_batt > ib_max) {
        fired(Rule::IB_ERR_H, {{"ib", i_batt}, {"max", ib_max}}, "i_batt > ib_max", "i_batt = ib_max; i_inv = -i_batt - i_pv",
              ib_max);
        i_batt = ib_max;
        i_inv = -i_batt - i_pv;
    }
    p = p_from_i(i_inv, u, eff);

    // 10 P_EXC [QUIRK, literal]: no special case for -1.
    if (excess && p > 0 && p > op + *excess) {
        fired(Rule::P_EXC, {{"p", p}, {"op", op}, {"exc", *excess}}, "p > 0 and p > op + excess", "p = op + excess",
              op + *excess);
        p = op + *excess;
    }
    // D3: IB_ERR_L/H run after P_MIN/P_MAX and can leave the AC range again.
    if (p < sp.pg_min || p > sp.pg_max) {
        double clamped = std::clamp(p, sp.pg_min, sp.pg_max);
        fired(Rule::FINAL_CLAMP, {{"p", p}, {"min", sp.pg_min}, {"max", sp.pg_max}}, "p outside [pg_min, pg_max]",
              "p = clamp(p, pg_min, pg_max)", clamped);
        p = clamped;
    }
    out.p = p;
    return out;
}

} // namespace moat::inverter
