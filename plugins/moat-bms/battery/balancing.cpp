#include "balancing.hpp"

#include <algorithm>
#include <numeric>

namespace moat::bms::battery {

BalancePlan plan_balancing(const BatteryConfig& c, std::span<const BalanceCell> cells) {
    BalancePlan plan;
    std::vector<BalanceCell> st(cells.begin(), cells.end());
    auto set = [&](int i, std::optional<double> thr) {
        st[i].threshold = thr;
        plan.actions.push_back({i, thr});
    };
    const auto& b = c.balance;
    double lo = st.front().volts, hi = lo;
    for (const auto& cell : st) lo = std::min(lo, cell.volts), hi = std::max(hi, cell.volts);

    if (hi - lo < 2 * b.d || hi < b.min) {
        for (int i = 0; i < int(st.size()); ++i)
            if (!st[i].forced && st[i].threshold) set(i, std::nullopt);
        return plan;
    }
    double thr1 = std::max(lo + b.d + b.r * (c.cell.ext_max - lo), b.min);
    double tgt = std::max(lo, b.min);
    double thr2 = tgt + 0.8 * (thr1 - tgt);
    plan.start = thr1 + b.d, plan.target = tgt, plan.drop = thr2;

    int cur = 0, want = 0;
    for (int i = 0; i < int(st.size()); ++i) {
        auto& cell = st[i];
        if (cell.forced) {
            ++cur;
            continue;
        }
        if (cell.threshold) {
            if (cell.in_balance) {
                ++cur;
                if (*cell.threshold < tgt) set(i, tgt + 2 * b.d);  // never balance below the minimum
            } else {
                set(i, std::nullopt);  // the module finished its cycle
            }
        } else if (cell.volts >= thr1 + b.d) {
            ++want;
        }
    }
    plan.read_pwm = cur > 0;
    plan.busy = cur + want > 0;

    // Ring order breaks ties, so equal voltages are handled deterministically.
    std::vector<int> order(st.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int z) { return st[a].volts < st[z].volts; });

    // Shed load, lowest cells first (n = 0: no limit).
    for (int i : order) {
        if (b.n == 0 || want + cur <= b.n) break;
        if (st[i].forced) continue;
        if (st[i].threshold && st[i].in_balance && st[i].volts < thr2) {
            set(i, std::nullopt);
            --cur;
        }
    }
    // Add the highest cells that need it, never more than n at once.
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        int i = *it;
        if (st[i].forced || st[i].threshold) continue;
        if (b.n > 0 && cur >= b.n) break;
        if (st[i].volts >= thr1 + b.d) {
            set(i, tgt);
            ++cur;
            plan.busy = true;
            continue;
        }
        break;
    }
    return plan;
}

std::optional<ManualBalance> manual_balance(double requested, double cell_volts) {
    if (requested < 0.1) return ManualBalance{false, std::nullopt};
    if (requested > cell_volts) return std::nullopt;
    return ManualBalance{true, requested};
}

} // namespace moat::bms::battery
