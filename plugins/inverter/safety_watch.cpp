#include "safety_watch.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "controller.hpp"

namespace moat::inverter {

namespace {
double secs(Duration d) { return std::chrono::duration<double>(d).count(); }
} // namespace

SafetyWatch::SafetyWatch(ModeSupervisor& sup, Clock& clock, Logger log, SafetyTiming timing, const SystemParams& sp)
    : sup_(sup), clock_(clock), log_(std::move(log)), timing_(timing), sp_(sp) {}

void SafetyWatch::start() { started_ = clock_.now(); }

void SafetyWatch::updated(const std::string& service) { last_update_[service] = clock_.now(); }

std::optional<Duration> SafetyWatch::age_of(const std::string& service) const {
    if (service.empty()) return std::nullopt;
    auto it = last_update_.find(service);
    TimePoint last = it != last_update_.end() ? it->second : started_;
    return clock_.now() - last;
}

GuardDecision SafetyWatch::decide(const SafetyReading& r) {
    GuardInput g = r.guard;
    auto now = clock_.now();
    if (g.problems.empty()) invalid_since_.reset();
    else if (!invalid_since_) invalid_since_ = now;
    g.invalid_for = invalid_since_ ? now - *invalid_since_ : Duration(0);
    g.system_age = age_of("com.victronenergy.system");
    if (g.vebus_present) g.vebus_age = age_of(r.vebus);
    if (g.battery_present) g.battery_age = age_of(r.battery);
    return evaluate_guard(g, timing_.input_timeout);
}

void SafetyWatch::check(const SafetyReading& r) {
    GuardDecision d = decide(r);
    watch_low_battery(r);
    watch_feed_in(r);
    // At start the services appear one by one: within the first input timeout
    // a missing one is expected (info); if it is still missing then, a warning.
    bool starting = !ever_allowed_ && clock_.now() - started_ < timing_.input_timeout;
    bool changed = !checked_ || d.may_write != may_write_ || d.write_problem != write_problem_;
    if (changed || (!d.may_write && !starting && !write_problem_warned_)) {
        if (d.may_write) log_.info("writing to the Multi is allowed (ESS mode 3, ESS assistant present)");
        else if (starting) log_.info("not writing to the Multi yet: {}", d.write_problem);
        else log_.warning("not writing to the Multi: {}", d.write_problem);
        write_problem_warned_ = !d.may_write && !starting;
        ever_allowed_ = ever_allowed_ || d.may_write;
        may_write_ = d.may_write;
        write_problem_ = d.write_problem;
    }
    bool was_ok = sup_.inputs_ok();
    bool ok = d.inputs_ok || d.holding;
    checked_ = true;
    if (ok != was_ok) {
        input_problem_ = d.input_problem;
        if (!ok) {
            log_.warning("input lost, stopping the control loop: {}", d.input_problem);
        } else {
            if (sup_.ever_started()) log_.info("inputs are back; resuming mode {}", to_string(sup_.mode()));
            else log_.info("inputs complete; starting mode {}", to_string(sup_.mode()));
            input_problem_.clear();
        }
        sup_.set_inputs_ok(ok);
    } else if (!ok) input_problem_ = d.input_problem;
    else input_problem_ = d.holding ? d.input_problem : std::string();
}

void SafetyWatch::watch_low_battery(const SafetyReading& r) {
    // Between two cycles: a battery that becomes low while the last cycle
    // inverted has the mode restarted at once (safe setpoints first) instead
    // of the old setpoints being held or refreshed until the next cycle; off
    // and idle (which compute rarely) restart when it has been fine for
    // low_battery_hold (no restart loop on a flapping reading).
    if (!r.inputs) return;
    auto why = inverter::low_battery(*r.inputs, sp_, r.capacity_test);
    if (why) {
        battery_fine_since_.reset();
        if (!low_battery_) {
            bool inverting = sup_.ever_started() && r.may_be_inverting;
            log_.warning("battery low ({}): the inverter may not discharge it{}", *why,
                         inverting ? "; restarting the mode with the clamp, safe setpoints first" : "");
            if (inverting) sup_.restart("battery low", true);
        }
        low_battery_ = why;
        return;
    }
    if (!low_battery_) return;
    auto now = clock_.now();
    if (!battery_fine_since_) battery_fine_since_ = now;
    if (now - *battery_fine_since_ < timing_.low_battery_hold) return;
    log_.info("the battery is no longer low (for {:.0f} s)", secs(timing_.low_battery_hold));
    low_battery_.reset();
    battery_fine_since_.reset();
    if (!closed_loop(sup_.mode())) sup_.restart("battery no longer low", false);
}

void SafetyWatch::watch_feed_in(const SafetyReading& r) {
    // OvervoltageFeedIn turning 1 ends a closed-loop mode once: safe
    // setpoints, then off at 0 W with the reason as the error.
    Mode m = sup_.target();
    auto why = refuse_closed_loop(m, r.overvoltage_feed_in);
    if (why && !feed_in_refused_) sup_.fall_back(fmt::format("mode {} refused: {}", to_string(m), *why), true);
    feed_in_refused_ = why.has_value();
}

Task<void> SafetyWatch::run(std::function<SafetyReading()> read, std::function<void()> after_check) {
    using namespace std::chrono_literals;
    for (;;) {
        check(read());
        if (after_check) after_check();
        co_await sleep_for(std::min<Duration>(100ms, timing_.input_timeout / 4));
    }
}

std::vector<double> SafetyWatch::safe_setpoints(int n_phase) const {
    auto sp = inverter::safe_setpoints(n_phase, sp_);
    if (low_battery_)  // a positive safe_power would discharge it
        for (double& v : sp) v = std::max(v, 0.0);
    return sp;
}

} // namespace moat::inverter
