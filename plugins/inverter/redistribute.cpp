#include "redistribute.hpp"

#include <algorithm>
#include <utility>

namespace moat::inverter {

namespace {

// One side of the algorithm in Victron sign, written for feeding (negative
// values, caps in `cap` = ps_min). The charge side runs through the same code
// with every value negated, which makes it the exact mirror image.
// First pass: update the caps from (p_set, p_run) and sum the overshoot.
double detect(const std::vector<double>& v, const std::vector<double>& p_set, const std::vector<double>& p_run,
              std::vector<double>& cap) {
    const double sentinel = -Redistributor::no_cap;
    double pd = 0;
    for (std::size_t k = 0; k < v.size(); ++k) {
        if (!(p_set[k] < 0)) continue;  // not feeding on this phase: the other side's business
        double p = v[k];
        if (p_set[k] < p_run[k] - 20) {
            // Feeds at least 20 W less than asked: that is its cap for now.
            cap[k] = p_run[k];
            if (p < cap[k]) pd += cap[k] - p - 50;
        } else if (cap[k] == sentinel) {
            // no known cap
        } else if (cap[k] >= p_run[k] - 10) {
            cap[k] = sentinel;  // it delivers what it could not before: the cap is gone
        } else if (p < 0 && p < cap[k] - 50) {
            pd += cap[k] - p - 50;
        }
    }
    return pd;
}

// Second pass: the phases over their cap get the cap plus a 50 W probe (to
// notice when it lifts); the difference goes to the others, worst-hit first.
void spread(std::vector<double>& v, const std::vector<double>& cap) {
    std::vector<std::pair<std::size_t, double>> items;
    for (std::size_t k = 0; k < v.size(); ++k) items.emplace_back(k, v[k]);
    // The key includes the sentinel, on purpose: it orders the uncapped phases too.
    std::stable_sort(items.begin(), items.end(), [&](const auto& a, const auto& b) {
        return -a.second + cap[a.first] < -b.second + cap[b.first];
    });
    double d = 0;
    while (!items.empty()) {
        auto [k, p] = items.back();
        items.pop_back();
        if (p < cap[k]) {
            d += cap[k] - p;
            p = cap[k] - 50;
        } else {
            double pp = d / double(items.size() + 1);
            if (p - pp < cap[k]) {
                d -= p - cap[k];
                p = cap[k] - 50;
            } else {
                d -= pp + 50;
                p -= pp + 50;
            }
        }
        v[k] = p;
    }
}

std::vector<double> negated(std::vector<double> v) {
    for (double& x : v) x = -x;
    return v;
}

} // namespace

std::vector<double> Redistributor::apply(const std::vector<double>& ps, const PhaseValues& p_set_in,
                                         const PhaseValues& p_run_in) {
    const std::size_t n = ps.size();
    // Into Victron sign: this is the sign correction of §10.1.
    std::vector<double> v = negated(ps);
    std::vector<double> p_set(p_set_in.begin(), p_set_in.begin() + n), p_run(p_run_in.begin(), p_run_in.begin() + n);
    std::vector<double> cap_min(ps_min.begin(), ps_min.begin() + n);
    // The charge side, mirrored: ps_max is kept as -ps_max there.
    std::vector<double> cap_max = negated(std::vector<double>(ps_max.begin(), ps_max.begin() + n));
    std::vector<double> v_m = negated(v), p_set_m = negated(p_set), p_run_m = negated(p_run);

    double pd_min = detect(v, p_set, p_run, cap_min);
    double pd_max = detect(v_m, p_set_m, p_run_m, cap_max);
    if (pd_min > 0) spread(v, cap_min);
    if (pd_max > 0) {
        v_m = negated(v);  // on top of the feed side's result
        spread(v_m, cap_max);
        v = negated(v_m);
    }
    for (std::size_t k = 0; k < n; ++k) {
        ps_min[k] = cap_min[k];
        ps_max[k] = -cap_max[k];
    }
    return negated(v);
}

} // namespace moat::inverter
