#include "controller.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>

#include "phases.hpp"

namespace moat::inverter {

void Controller::start_mode(double p_inv) {
    stepper.reset(p_inv);
    redistributor = Redistributor{};
    running = false;
}

CycleReport Controller::calc_inv_p(const Inputs& in, double p, std::optional<double> excess, std::optional<int> phase) {
    CycleReport r;
    r.init = p;
    ChainResult chain = limit_chain(p, excess, in, params, pv.limits());
    r.limits = std::move(chain.limits);
    r.dest = chain.p;
    std::optional<LimitEntry> grad;
    r.setpoint = stepper.next(r.dest, in.soc(), params, &grad);
    if (grad) r.limits.push_back(std::move(*grad));
    r.inv_phases = assign_phases(r.setpoint, phase, in, params);
    return r;
}

CycleReport Controller::calc_grid_p(const Inputs& in, double pg, std::optional<double> excess) {
    return calc_inv_p(in, -in.p_cons() - pg, excess);
}

CycleReport Controller::calc_batt_i(const Inputs& in, double i) {
    double ii = std::max(in.ib_min(), std::min(i, in.ib_max()));
    return calc_inv_i(in, -ii - in.i_pv());
}

CycleReport Controller::calc_inv_i(const Inputs& in, double i) {
    return calc_inv_p(in, p_from_i(i, in.u_dc(params.r_int), params.inv_eff));
}

CycleReport Controller::calc_fixed(const Inputs& in, double power) const {
    CycleReport r;
    r.init = r.dest = r.setpoint = power;
    r.inv_phases.assign(in.n_phase, power / in.n_phase);
    return r;
}

std::optional<std::string> low_battery(const Inputs& in, const SystemParams& sp, bool capacity_test) {
    if (!in.allow_to_discharge) return "the BMS does not allow discharging";
    if (in.max_discharge_current == 0) return "the BMS's discharge current limit is 0";
    if (in.u_dc(sp.r_int) <= in.u_min())
        return fmt::format("u_dc {:.2f} V <= u_min {:.2f} V", in.u_dc(sp.r_int), in.u_min());
    if (!capacity_test && in.soc() <= sp.soc_cutoff) return fmt::format("SoC {:.3f} <= soc_cutoff {:.3f}", in.soc(), sp.soc_cutoff);
    return std::nullopt;
}

Cycle Controller::cycle(const Inputs& in, const Target& t) {
    Cycle c;
    CycleReport& r = c.report;
    switch (t.kind) {
    case Target::Kind::fixed: r = calc_fixed(in, t.value); break;
    case Target::Kind::inv_p: r = calc_inv_p(in, t.value, t.excess, t.phase); break;
    case Target::Kind::grid_p: r = calc_grid_p(in, t.value, t.excess); break;
    case Target::Kind::batt_i: r = calc_batt_i(in, t.value); break;
    }

    if (auto why = low_battery(in, params, capacity_test)) {
        double before = 0, after = 0;
        for (double& p : r.inv_phases) {
            before += p;
            p = std::min(p, 0.0);
            after += p;
        }
        if (after != before) {
            r.limits.push_back({Rule::LOW_BATT, {{"p", before}}, *why, "inverter power per phase <= 0", after, {}});
            if (t.kind != Target::Kind::fixed) stepper.last_p = after;
        }
    }

    const int n = in.n_phase;
    r.phases.resize(n);
    for (int k = 0; k < n; ++k) r.phases[k] = r.inv_phases[k] - in.consumption_on_output[k];  // D2
    if (params.phase_redistribution && running && n > 1 && t.kind != Target::Kind::fixed)
        r.phases = redistributor.apply(r.phases, in.hub4_setpoint, in.ac_in_power);

    c.setpoints.resize(n);
    for (int k = 0; k < n; ++k) c.setpoints[k] = -r.phases[k] + 0.0;  // + 0.0: no "-0" on the bus
    return c;
}

std::vector<double> safe_setpoints(int n_phase, const SystemParams& sp) {
    return std::vector<double>(n_phase, -sp.safe_power + 0.0);
}

std::string set_line(const std::vector<double>& setpoints, bool fake) {
    std::string s = fake ? "NO-OP SET inverter" : "SET inverter";
    if (setpoints.size() == 1) return s + fmt::format(" {:.0f}", setpoints[0]);
    double sum = 0;
    for (double v : setpoints) sum += v;
    s += fmt::format(" {:.0f} ∑", sum);
    for (double v : setpoints) s += fmt::format(" {:.0f}", v);
    return s;
}

} // namespace moat::inverter
