#include "analyze.hpp"

#include <chrono>
#include <cmath>
#include <stdexcept>

#include <fmt/format.h>

#include "modes.hpp"
#include "supervisor.hpp"

namespace moat::inverter {

// ---------------------------------------------------------------- the decisions

namespace {

/// config["a"]["b"]... as a finite number; throws naming the dotted key.
double config_number(const Value& config, std::initializer_list<const char*> keys) {
    const Value* v = &config;
    std::string path;
    for (const char* k : keys) {
        path += (path.empty() ? "" : ".") + std::string(k);
        if (!v->is_dict()) break;
        auto it = v->as_dict().find(k);
        if (it == v->as_dict().end()) {
            v = nullptr;
            break;
        }
        v = &it->second;
    }
    std::optional<double> n = v ? v->as_number() : std::nullopt;
    if (!v || !n || v->is_bool() || !std::isfinite(*n))
        throw std::invalid_argument(fmt::format("the BMS configuration has no number at {}", path));
    return *n;
}

} // namespace

CellLimits cell_limits(const Value& config) {
    CellLimits l;
    l.lim_min = config_number(config, {"cell", "u", "lim", "min"});
    l.lim_max = config_number(config, {"cell", "u", "lim", "max"});
    l.ext_min = config_number(config, {"cell", "u", "ext", "min"});
    l.ext_max = config_number(config, {"cell", "u", "ext", "max"});
    l.balance_d = config_number(config, {"cell", "balance", "d"});
    if (!(l.ext_min < l.lim_min && l.lim_min < l.lim_max && l.lim_max < l.ext_max))
        throw std::invalid_argument(fmt::format("the BMS's cell limits are out of order: need cell.u.ext.min {} < "
                                                "lim.min {} < lim.max {} < ext.max {}",
                                                l.ext_min, l.lim_min, l.lim_max, l.ext_max));
    if (!(l.balance_d > 0))
        throw std::invalid_argument(fmt::format("the BMS's cell.balance.d is {}, not above 0", l.balance_d));
    return l;
}

std::string_view to_string(AnalyzeStep step) {
    switch (step) {
    case AnalyzeStep::balance: return "balance";
    case AnalyzeStep::below_top: return "below_top";
    case AnalyzeStep::charge: return "charge";
    case AnalyzeStep::discharge: return "discharge";
    case AnalyzeStep::recharge: return "recharge";
    }
    return "?";
}

double balance_floor(const CellLimits& l) { return (l.lim_max + l.ext_max) / 2; }
double below_top_ceiling(const CellLimits& l) { return 2 * l.lim_max - l.ext_max; }
double top_floor(const CellLimits& l) { return l.lim_max - (l.ext_max - l.lim_max) / 3; }
double bottom_ceiling(const CellLimits& l) { return l.lim_min + (l.lim_min - l.ext_min) / 3; }

StepCheck check_step(AnalyzeStep step, const CellLimits& l, const CellVoltages& v) {
    switch (step) {
    case AnalyzeStep::balance:
        // Balanced: every cell near the top, and the cells close together.
        if (v.min_cell < balance_floor(l)) return {false, "min>umin"};
        if (v.max_cell - v.min_cell >= 3 * l.balance_d) return {false, "max-min<dest_d"};
        return {true, "OK"};
    case AnalyzeStep::below_top:
        if (v.max_cell < below_top_ceiling(l)) return {true, "OK"};
        if (v.min_cell < l.ext_min) return {true, "LOW"};
        return {false, "max<umin"};
    case AnalyzeStep::charge:
    case AnalyzeStep::recharge:
        return v.min_cell > top_floor(l) ? StepCheck{true, "OK"} : StepCheck{false, "min>umax"};
    case AnalyzeStep::discharge:
        return v.min_cell < bottom_ceiling(l) ? StepCheck{true, "OK"} : StepCheck{false, "min<umin"};
    }
    return {};
}

std::optional<std::string> p_dis_sign_problem(double p_dis, bool use_grid) {
    if (use_grid && !(p_dis < 0))
        return fmt::format("p_dis has the wrong sign: with use_grid it is a grid power and must be negative "
                           "(export), not {:g}", p_dis);
    if (!use_grid && !(p_dis > 0))
        return fmt::format("p_dis has the wrong sign: without use_grid it is an inverter power and must be "
                           "positive, not {:g}", p_dis);
    return std::nullopt;
}

double loss_factor(double e_dis, double e_dis_c, double e_chg, double e_chg_d) {
    return 1 - (e_dis + e_dis_c) / (e_chg + e_chg_d + 1);
}

std::optional<std::string> bms_service_problem(std::string_view name) {
    constexpr std::string_view prefix = "com.victronenergy.battery.";
    if (name.empty()) return std::nullopt;
    auto bad = [&] {
        return fmt::format("'{}' is not a battery service name: expected {}<name> (letters, digits, _ and -, "
                           "dot-separated parts not starting with a digit)", name, prefix);
    };
    if (!name.starts_with(prefix) || name.size() == prefix.size() || name.size() > 255) return bad();
    std::string_view rest = name.substr(prefix.size());
    std::size_t start = 0;
    for (;;) {
        std::size_t dot = rest.find('.', start);
        std::string_view part = rest.substr(start, dot == std::string_view::npos ? rest.npos : dot - start);
        if (part.empty() || (part[0] >= '0' && part[0] <= '9')) return bad();
        for (char c : part)
            if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
                return bad();
        if (dot == std::string_view::npos) break;
        start = dot + 1;
    }
    return std::nullopt;
}

// ---------------------------------------------------------------- the run

namespace {

double secs(Duration d) { return std::chrono::duration<double>(d).count(); }

/// Step 0 charges with top_off (up to the BMS's MaxChargeVoltage); afterwards,
/// and when the mode is stopped during it, the setting is restored (the
/// original left it on).
class TopOff {
public:
    explicit TopOff(Controller& ctl) : ctl_(ctl), saved_(ctl.params.top_off) { ctl_.params.top_off = true; }
    ~TopOff() { ctl_.params.top_off = saved_; }
    TopOff(const TopOff&) = delete;
    TopOff& operator=(const TopOff&) = delete;

private:
    Controller& ctl_;
    bool saved_;
};

/// While the test runs the SoC cutoff does not apply (Controller::capacity_test);
/// restored when it ends, also when cancelled.
class CapacityTest {
public:
    explicit CapacityTest(Controller& ctl) : ctl_(ctl) { ctl_.capacity_test = true; }
    ~CapacityTest() { ctl_.capacity_test = false; }
    CapacityTest(const CapacityTest&) = delete;
    CapacityTest& operator=(const CapacityTest&) = delete;

private:
    Controller& ctl_;
};

class Analysis {
public:
    Analysis(Controller& ctl, LoopIo& io, BmsIo& bms, const LoopTiming& timing, Op& op)
        : ctl_(ctl), io_(io), bms_(bms), timing_(timing), op_(op) {}

    Task<void> run();

private:
    double number(std::string_view name) const { return param(op_, Mode::analyze, name).value_or(0); }
    bool use_grid() const { return number("use_grid") != 0; }
    /// A power parameter for this round; p_dis is checked again (SetModeParam may change it).
    double power(const char* name);
    /// One closed-loop cycle towards `p` (§14.8 set_p).
    Task<void> set_p(double p);
    /// Rounds of "read the cells, one cycle with `power_param`" until the step's
    /// condition held on 4 rounds in a row.
    Task<void> wait_for(AnalyzeStep step, const char* power_param);
    Task<void> balance();

    Controller& ctl_;
    LoopIo& io_;
    BmsIo& bms_;
    const LoopTiming& timing_;
    Op& op_;
};

double Analysis::power(const char* name) {
    double p = number(name);
    if (std::string_view(name) == "p_dis")
        if (auto why = p_dis_sign_problem(p, use_grid())) {
            io_.analyze_report(Value::Dict{{"p_chg", number("p_chg")}, {"p_dis", p}, {"error", *why}});
            throw std::runtime_error(*why);
        }
    return p;
}

Task<void> Analysis::set_p(double p) {
    auto excess = param(op_, Mode::analyze, "excess");
    Target t = use_grid() ? Target::grid_p(p, excess) : Target::inv_p(p, excess);
    auto cycle = apply_and_settle(ctl_, io_, timing_, t);
    co_await cycle;
}

Task<void> Analysis::wait_for(AnalyzeStep step, const char* power_param) {
    int n = 0;
    for (;;) {
        CellLimits l = co_await bms_.limits();
        CellVoltages v = co_await bms_.voltages();
        Value::Dict r{{"step", std::string(to_string(step))}, {"min", v.min_cell}, {"max", v.max_cell}};
        switch (step) {
        case AnalyzeStep::balance:
            r["umin"] = balance_floor(l);
            r["umax"] = l.ext_max;
            r["dest_d"] = 3 * l.balance_d;
            break;
        case AnalyzeStep::below_top: r["umin"] = below_top_ceiling(l); break;
        case AnalyzeStep::charge:
        case AnalyzeStep::recharge: r["umax"] = top_floor(l); break;
        case AnalyzeStep::discharge: r["umin"] = bottom_ceiling(l); break;
        }
        if (step != AnalyzeStep::balance && step != AnalyzeStep::below_top) {
            // The measurement so far (GetWork with poll: the device's sums included).
            Work e = co_await bms_.work(true, false);
            r["e"] = Value::make_dict({{"chg", e.chg}, {"dis", e.dis}});
        }
        StepCheck c = check_step(step, l, v);
        n = c.met ? n + 1 : 0;
        r[c.met ? "done" : "wait"] = c.label;
        double p = power(power_param);
        r["power"] = p;
        r["n"] = n;
        io_.analyze_report(r);
        if (n > 3) co_return;
        co_await set_p(p);
    }
}

Task<void> Analysis::balance() {
    TopOff top_off(ctl_);
    co_await wait_for(AnalyzeStep::balance, "p_chg");
    const TimePoint end =
        io_.time_now() + std::chrono::duration_cast<Duration>(std::chrono::duration<double>(number("balance")));
    for (;;) {
        double left = secs(end - io_.time_now());
        double p = power("p_chg");
        io_.analyze_report(Value::Dict{{"step", "balance_hold"}, {"wait", "timer"}, {"t", left}, {"power", p}});
        if (left <= 0) co_return;
        co_await set_p(p);
    }
}

Task<void> Analysis::run() {
    std::optional<CapacityTest> capacity_test;
    capacity_test.emplace(ctl_);  // until the hand-over
    int skip = static_cast<int>(number("skip"));
    // Each step is skipped while the count lasts.
    auto skipped = [&skip] {
        if (skip <= 0) return false;
        --skip;
        return true;
    };
    double e_dis = 0, e_chg = 0, e_chg_d = 0, e_dis_c = 0;

    if (!skipped() && number("balance") > -1) co_await balance();  // 0
    if (!skipped()) co_await wait_for(AnalyzeStep::below_top, "p_dis");  // 1
    if (!skipped()) co_await wait_for(AnalyzeStep::charge, "p_chg");  // 2

    if (skipped()) {  // 3: the discharged energy from the parameters
        e_dis = number("e_dis");
        if (skip == 0) co_await bms_.work(true, true);  // the measurement starts here
    } else {
        co_await bms_.work(true, true);
        co_await wait_for(AnalyzeStep::discharge, "p_dis");
        Work w = co_await bms_.work(true, true);
        e_dis = w.dis;
        e_chg_d = w.chg;
    }
    if (skipped()) {  // 4: the charged energy from the parameters
        e_chg = number("e_chg");
        if (skip == 0) co_await bms_.work(true, true);
    } else {
        co_await wait_for(AnalyzeStep::recharge, "p_chg");
        Work w = co_await bms_.work(true, true);
        e_chg = w.chg;
        e_dis_c = w.dis;
    }

    // 5: the loss factor, and the capacity to the BMS.
    const double loss = loss_factor(e_dis, e_dis_c, e_chg, e_chg_d);
    Value::Dict r{{"step", "result"}, {"chg", e_chg},   {"dis", e_dis},
                  {"chg_d", e_chg_d}, {"dis_c", e_dis_c}, {"loss", loss}};
    const bool skip_result = skipped();
    if (loss < 0) {
        r["test"] = "chg>dis";
    } else if (skip_result) {
        r["done"] = true;
        r["error"] = "Skipped";
    } else {
        r["done"] = true;
        r["capacity"] = e_dis;
        bool ok = co_await bms_.set_capacity(e_dis, loss, true);
        if (!ok) r["error"] = fmt::format("the BMS refused SetCapacity({:g}, {:g}, true)", e_dis, loss);
    }

    // 6: a long-term mode at 0 W, or off when skipped; the supervisor switches.
    Mode next = skipped() ? Mode::off : use_grid() ? Mode::p_grid : Mode::p_inv;
    Op args{{"power", 0.0}};
    if (next != Mode::off) args["excess"] = param(op_, Mode::analyze, "excess");
    r["next"] = std::string(to_string(next));
    capacity_test.reset();
    io_.analyze_report(r);
    io_.hand_over(next, args);
    Event stopped;  // never set: the supervisor stops this mode for the next
    co_await stopped.wait();
}

Task<void> watch_bms(BmsIo& bms) {
    std::string why = co_await bms.lost();
    throw ModeAbort(fmt::format("the MoaT BMS went away: {}", why));
}

} // namespace

Task<void> run_analyze(Controller& ctl, LoopIo& io, BmsIo& bms, const LoopTiming& timing, Op& op) {
    Analysis analysis(ctl, io, bms, timing, op);
    {
        // The sign first: a wrong one never starts (the original froze the setpoints instead).
        const double p_dis = param(op, Mode::analyze, "p_dis").value_or(0);
        const bool use_grid = param(op, Mode::analyze, "use_grid").value_or(0) != 0;
        if (auto why = p_dis_sign_problem(p_dis, use_grid)) {
            io.analyze_report(Value::Dict{
                {"p_chg", param(op, Mode::analyze, "p_chg").value_or(0)}, {"p_dis", p_dis}, {"error", *why}});
            throw std::runtime_error(*why);
        }
    }
    auto body = [&](TaskGroup& g) -> Task<void> {
        g.spawn(analysis.run(), "analyze");
        g.spawn(watch_bms(bms), "analyze BMS watch");
        co_return;
    };
    co_await with_group(body);
}

} // namespace moat::inverter
