#include "stepping.hpp"

#include <cmath>

namespace moat::inverter {

bool small_p_step(double a, double b, double p_step) {
    if (std::fabs(a - b) < p_step) return true;
    if ((a > 0) != (b > 0)) return false;
    double ratio = (p_step + std::fabs(a)) / (p_step + std::fabs(b));
    return 10.0 / 12 < ratio && ratio < 12.0 / 10;
}

double Stepper::next(double p, double soc, const SystemParams& sp, std::optional<LimitEntry>* entry) {
    double np;
    if ((sp.f_delta <= soc && soc <= 1 - sp.f_delta) || small_p_step(last_p, p, sp.p_step)) {
        np = p;
        step = 1;
    } else {
        step = small_p_step(dest_p, p, sp.p_step) ? step + 1 : 2;
        double pd = (p - last_p) * std::pow(sp.f_step, 2.0 / step);
        // A zero pd counts as positive (it cannot occur: the step is not small).
        if (std::fabs(pd) < sp.p_step) pd = pd < 0 ? -sp.p_step : sp.p_step;
        np = last_p + pd;
        if (entry)
            *entry = LimitEntry{Rule::P_GRAD,
                                {{"n", double(step)}, {"soc", soc}},
                                "SoC outside [f_delta, 1 - f_delta] and not a small step",
                                "np = last_p + (p - last_p) * f_step^(2/step), at least p_step",
                                np,
                                {pd, last_p, p, np}};
    }
    dest_p = p;
    last_p = np;
    return np;
}

} // namespace moat::inverter
