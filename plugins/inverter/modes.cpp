#include "modes.hpp"

#include <algorithm>
#include <cmath>
#include <fmt/format.h>
#include <stdexcept>

namespace moat::inverter {

ParamValue param(const Op& op, Mode mode, std::string_view name) {
    if (auto it = op.find(name); it != op.end()) return it->second;
    if (auto* spec = find_param(mode, name, true)) return spec->default_value;
    throw std::logic_error(fmt::format("mode {} has no parameter '{}'", to_string(mode), name));
}

namespace {

double number(const Op& op, Mode mode, std::string_view name) { return param(op, mode, name).value_or(0.0); }

std::optional<int> integer(const ParamValue& v) {
    if (!v) return std::nullopt;
    return static_cast<int>(std::lround(*v));
}

} // namespace

Target simple_target(Mode mode, const Op& op) {
    switch (mode) {
    case Mode::off:
    case Mode::idle: return Target::fixed(number(op, mode, "power"));
    case Mode::p_grid: return Target::grid_p(number(op, mode, "power"), param(op, mode, "excess"));
    case Mode::p_inv:
        return Target::inv_p(number(op, mode, "power"), param(op, mode, "excess"), integer(param(op, mode, "phase")));
    case Mode::i_batt: return Target::batt_i(number(op, mode, "current"));
    default: throw std::logic_error(fmt::format("mode {} has no simple target", to_string(mode)));
    }
}

Target soc_first_target(const Op& op) {
    return Target::grid_p(number(op, Mode::soc, "power_in"), param(op, Mode::soc, "excess"));
}

Target soc_target(const Op& op, double soc, SocReport* report) {
    const double dest = number(op, Mode::soc, "dest_soc");
    const auto excess = param(op, Mode::soc, "excess");
    SocReport r{soc, dest, dest - soc, std::nullopt};
    Target t;
    if (std::fabs(soc - dest) < 0.02) {
        r.delta = 0;
        t = Target::batt_i(0);
    } else {
        r.power = number(op, Mode::soc, dest > soc ? "power_in" : "power_out");
        t = Target::grid_p(*r.power, excess);
    }
    if (report) *report = r;
    return t;
}

RemoteParams remote_params(Op& op) {
    auto get = [&](const char* name) { return param(op, Mode::remote, name); };
    auto put = [&](const char* name, double v) {
        op[name] = v;
        return v;
    };
    RemoteParams rp;
    rp.power = put("power", std::max(0.0, get("power").value_or(0)));
    rp.power_ref = put("power_ref", std::max(0.0, get("power_ref").value_or(0)));
    rp.power_override = get("power_override");
    if (rp.power_override && *rp.power_override == -1) {
        rp.power_override.reset();
        op["power_override"] = std::nullopt;
    }
    rp.power_low = put("power_low", std::max(0.0, get("power_low").value_or(0)));
    rp.low_grid = put("low_grid", get("low_grid").value_or(1) != 0 ? 1 : 0) != 0;
    rp.limit = put("limit", std::clamp(get("limit").value_or(1), 0.0, 1.0));
    // The same expressions as the original, so the float results agree.
    rp.soc_low = put("soc_low", std::max(0.10, std::min(get("soc_low").value_or(0.2), 0.80)));
    rp.soc_low_zero = put("soc_low_zero", std::max(0.05, std::min(get("soc_low_zero").value_or(0.99), rp.soc_low - 0.02)));
    rp.soc_low_ok = put("soc_low_ok", std::min(std::max(get("soc_low_ok").value_or(0), rp.soc_low + 0.02), 0.85));
    rp.soc_high = put("soc_high", std::max(std::min(get("soc_high").value_or(0.9), 0.97), rp.soc_low + 0.10));
    rp.soc_high_ok = put("soc_high_ok", std::max({std::min(get("soc_high_ok").value_or(0.85), 0.95),
                                                  rp.soc_high - 0.02, rp.soc_low + 0.05}));
    rp.state = static_cast<int>(std::lround(get("mode").value_or(3)));
    return rp;
}

int remote_state(int s, double soc, const RemoteParams& rp) {
    if (soc <= rp.soc_low_zero) s = 1;
    else if (s == 1 && soc >= rp.soc_low) s = 2;

    if (s != 1 && soc <= rp.soc_low) s = 2;
    else if ((s == 1 || s == 2) && soc >= rp.soc_low_ok) s = 0;

    if (soc >= rp.soc_high) s = 3;
    else if (s == 3 && soc <= rp.soc_high_ok) s = 0;
    return s;
}

Target remote_target(int state, const RemoteParams& rp, const Inputs& in, double solar_p, RemoteReport* report) {
    RemoteReport r;
    r.mode = state;
    double p = rp.power;
    std::optional<double> ip;
    if (state == 1 || (state == 2 && !rp.low_grid)) ip = -rp.power_low;       // empty: charge
    else if (state == 2) ip = std::min(solar_p, -in.p_cons());                 // low: grid about 0
    else if (state == 3) p = std::max(solar_p + in.p_cons(), rp.power);        // full: export the surplus
    if (rp.power_override) ip = rp.power_override;
    r.p_want = p;

    Target t;
    if (!ip) {
        double exc = rp.power_ref - p;
        p *= rp.limit;
        exc *= rp.limit;
        r.exc = exc;
        t = Target::grid_p(-p, exc);
    } else {
        r.ip = ip;
        t = Target::inv_p(*ip, 0.0);
    }
    if (report) *report = r;
    return t;
}

Target remote_step(Op& op, const Inputs& in, double solar_p, RemoteReport* report) {
    RemoteParams rp = remote_params(op);
    int state = remote_state(rp.state, in.soc(), rp);
    op["mode"] = state;
    return remote_target(state, rp, in, solar_p, report);
}

} // namespace moat::inverter
