#include "phases.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <stdexcept>
#include <utility>

namespace moat::inverter {

std::vector<double> balance(std::vector<double> a, const Bound& min, const Bound& max) {
    if (a.empty()) return a;
    using Item = std::pair<std::size_t, double>;  // (index, value)

    double sl = 0, sh = 0;
    for (double v : a) (v < 0 ? sl : sh) += std::fabs(v);
    // Work on the side with the larger magnitude as positive; d is the minority's magnitude.
    const bool rev = sl > sh;
    double d = rev ? sh : sl;
    if (rev)
        for (double& v : a) v = -v;

    std::vector<Item> items;
    for (std::size_t i = 0; i < a.size(); ++i) items.emplace_back(i, a[i]);
    std::stable_sort(items.begin(), items.end(), [](const Item& x, const Item& y) { return x.second > y.second; });

    // Spread the minority over the positive values, smallest first; ra ends up ascending.
    std::vector<Item> ra;
    if (items.back().second >= 0) {
        ra.assign(items.rbegin(), items.rend());
    } else {
        while (!items.empty()) {
            auto [i, v] = items.back();
            items.pop_back();
            if (v <= 0) {
                ra.emplace_back(i, 0.0);  // its magnitude is already in d
                continue;
            }
            double rd = d / double(items.size() + 1);
            if (rd >= v) {
                d -= v;
                ra.emplace_back(i, 0.0);
            } else {
                ra.emplace_back(i, v - rd);
                d -= rd;
            }
        }
    }

    std::vector<Item> out;
    const Bound& m = rev ? min : max;
    if (m.none()) {
        out = std::move(ra);
    } else {
        // Cap, largest first; what a value cannot take goes to the smaller ones.
        d = 0;
        while (!ra.empty()) {
            auto [i, v] = ra.back();
            ra.pop_back();
            double rd = d / double(ra.size() + 1);
            double mi = rev ? -m.at(i) : m.at(i);
            if (v + rd > mi) {
                d += v - mi;
                out.emplace_back(i, mi);
            } else {
                out.emplace_back(i, v + rd);
                d -= rd;
            }
        }
    }

    std::vector<double> result(a.size());
    for (auto& [i, v] : out) result[i] = rev ? -v : v;
    return result;
}

std::vector<double> to_phases(double p, const Inputs& in, const SystemParams& sp) {
    const int n = in.n_phase;
    std::vector<double> load(n);
    double avg = 0;
    for (int k = 0; k < n; ++k) {
        load[k] = -in.consumption[k];
        avg += load[k];
    }
    avg /= n;
    std::vector<double> ps(n);
    for (int k = 0; k < n; ++k) ps[k] = p / n - (load[k] - avg);
    return balance(std::move(ps), -sp.p_per_phase, sp.p_per_phase);
}

std::vector<double> assign_phases(double p, std::optional<int> phase, const Inputs& in, const SystemParams& sp) {
    if (!phase && in.n_phase > 1) return to_phases(p, in, sp);
    int k = phase.value_or(0);
    if (k == 0) k = 1;
    if (k < 1 || k > in.n_phase)
        throw std::out_of_range(fmt::format("phase {} is not in 1..{}", k, in.n_phase));
    std::vector<double> ps(in.n_phase, 0.0);
    ps[k - 1] = p;
    return ps;
}

} // namespace moat::inverter
