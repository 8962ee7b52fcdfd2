#include "supervisor.hpp"

#include <cmath>

#include <fmt/format.h>

namespace moat::inverter {

namespace {

/// A refused parameter: unknown (the message lists the mode's parameters) or
/// a value out of type or range (check_param's message names the range).
ModeChangeError param_error(Mode mode, const std::string& name, const std::string& error, bool via_set_mode) {
    using Kind = ModeChangeError::Kind;
    if (name.empty() || name.front() == '_' || !find_param(mode, name, via_set_mode)) {
        std::string list;
        for (auto& p : mode_info(mode).params)
            if (!p.hidden) list += (list.empty() ? "" : ", ") + std::string(p.name);
        return ModeChangeError(Kind::unknown_parameter,
                               fmt::format("{} (the parameters of {}: {})", error, to_string(mode),
                                           list.empty() ? "none" : list));
    }
    return ModeChangeError(Kind::invalid_value, error);
}

} // namespace

ModeSupervisor::ModeSupervisor(SupervisorIo& io, Clock& clock, Logger log, Duration lockout, Mode start,
                               ModeDefaults defaults)
    : io_(io), clock_(clock), log_(std::move(log)), lockout_(lockout), defaults_(std::move(defaults)), mode_(start),
      op_(params_for(start, std::nullopt, {}, {}, defaults_)) {}

std::pair<Mode, bool> ModeSupervisor::check_change(const std::string& name, const Op& args) const {
    using Kind = ModeChangeError::Kind;
    auto m = parse_mode(name);
    bool different = !m || *m != target();
    if (different) {
        // The original checks the window before the name (§15): too_early wins.
        if (pending_mode_)
            throw ModeChangeError(Kind::too_early, "a mode change is under way; try again in a moment");
        if (ever_started_ && clock_.now() - mode_started_ < lockout_) {
            double left = std::chrono::duration<double>(*lockout_left()).count();
            throw ModeChangeError(Kind::too_early,
                                  fmt::format("mode {} started less than {:g} s ago; try again in {:.0f} s",
                                              to_string(mode_), std::chrono::duration<double>(lockout_).count(),
                                              std::ceil(left)));
        }
        if (!m) throw ModeChangeError(Kind::unknown, fmt::format("unknown mode '{}'", name));
    }
    int n = io_.n_phase();
    for (auto& [k, v] : args)
        if (auto err = inverter::check_param(*m, k, v, n, true)) throw param_error(*m, k, *err, true);
    return {*m, different};
}

void ModeSupervisor::change_mode(const std::string& name, const Op& args) {
    auto [m, different] = check_change(name, args);
    if (different) {
        log_.info("SetMode {} {}", to_string(m), op_dict(args));
        pending_op_ = params_for(m, std::nullopt, {}, args, defaults_);
        pending_mode_ = m;
        error_.clear();
        wake_.set();
    } else if (pending_mode_) {
        for (auto& [k, v] : args) pending_op_[k] = v;
    } else {
        log_.info("SetMode {} (same mode) {}", to_string(m), op_dict(args));
        op_ = params_for(m, mode_, op_, args, defaults_);
    }
    io_.changed();
}

std::optional<std::string> ModeSupervisor::check_param(const std::string& name, const ParamValue& value) const {
    return inverter::check_param(target(), name, value, io_.n_phase(), false);
}

void ModeSupervisor::change_param(const std::string& name, const ParamValue& value) {
    if (auto err = check_param(name, value)) throw param_error(target(), name, *err, false);
    Op& op = pending_mode_ ? pending_op_ : op_;
    log_.info("SetModeParam {} {} -> {}", name, param_to_value(op[name]), param_to_value(value));
    op[name] = value;
    io_.changed();
}

void ModeSupervisor::set_inputs_ok(bool ok) {
    if (ok == inputs_ok_) return;
    inputs_ok_ = ok;
    wake_.set();
}

void ModeSupervisor::restart(std::string why, bool safe_first) {
    // Requests before the next turn merge: a safe one is never downgraded.
    if (safe_first || restart_.empty()) restart_ = std::move(why);
    restart_safe_ = restart_safe_ || safe_first;
    wake_.set();
}

void ModeSupervisor::fall_back(const std::string& why, bool safe_first) {
    // §18.2: off at 0 W, the interface stays, the reason is kept in the state.
    log_.error("{}; falling back to off at 0 W", why);
    error_ = why;
    pending_mode_ = Mode::off;
    pending_op_ = params_for(Mode::off, std::nullopt, {}, {{"power", 0.0}}, {});
    if (safe_first) restart(why, true);
    else wake_.set();
}

void ModeSupervisor::hand_over(Mode next, const Op& args, const std::string& why) {
    for (auto& [k, v] : args)
        if (auto err = inverter::check_param(next, k, v, io_.n_phase(), true))
            throw std::invalid_argument(fmt::format("mode {} hands over to {}: {}", to_string(mode_), to_string(next), *err));
    if (pending_mode_) {
        log_.info("mode {} is done ({}), but the change to {} is already under way", to_string(mode_), why,
                  to_string(*pending_mode_));
        return;
    }
    log_.info("mode {} is done ({}); switching to {} {}", to_string(mode_), why, to_string(next), op_dict(args));
    pending_op_ = params_for(next, std::nullopt, {}, args, defaults_);
    pending_mode_ = next;
    error_.clear();
    wake_.set();
    io_.changed();
}

std::optional<Duration> ModeSupervisor::lockout_left() const {
    if (!ever_started_) return std::nullopt;
    return std::max(Duration(0), lockout_ - (clock_.now() - mode_started_));
}

Task<void> ModeSupervisor::mode_task(Mode mode, std::uint64_t generation) {
    std::string error;
    bool safe_first = false;
    try {
        co_await io_.run_mode(mode, op_);
        error = fmt::format("mode {} ended", to_string(mode));
    } catch (const Cancelled&) {
        log_.debug("MODE STOP {}", to_string(mode));
        throw;
    } catch (const ModeAbort& e) {
        error = fmt::format("mode {} failed: {}", to_string(mode), e.what());
        safe_first = true;
    } catch (const std::exception& e) {
        error = fmt::format("mode {} failed: {}", to_string(mode), e.what());
    }
    mode_ended(generation, error, safe_first);
}

void ModeSupervisor::mode_ended(std::uint64_t generation, const std::string& error, bool safe_first) {
    if (generation != generation_) return;
    // The mode is over; off writes its 0 W at once, after the safe setpoints when asked.
    fall_back(error, safe_first);
}

Task<void> ModeSupervisor::run() {
    auto body = [this](TaskGroup& g) -> Task<void> {
        TaskRef current;
        bool running = false;
        bool new_mode = true;  // the next start is a mode change (not a restart of the same mode)
        for (;;) {
            io_.turn();
            // A mode change stops the running mode; so do lost inputs (§18.3) and a
            // restart request (§18.5, §18.6), which may ask for the safe setpoints first.
            std::string why = !inputs_ok_ ? "input lost" : restart_;
            bool safe_first = !inputs_ok_ || restart_safe_;
            restart_.clear();
            restart_safe_ = false;
            if (running && (pending_mode_ || !why.empty())) {
                current.cancel();
                co_await current.join();
                running = false;
                if (!why.empty() && safe_first) co_await io_.write_safe(why.c_str());
                else if (!why.empty()) log_.info("restarting mode {}: {}", to_string(mode_), why);
            }
            if (pending_mode_) {
                mode_ = *pending_mode_;
                op_ = std::move(pending_op_);
                pending_mode_.reset();
                pending_op_.clear();
                new_mode = true;
            }
            if (running && current.done()) running = false;
            if (inputs_ok_ && !running) {
                ++generation_;
                // The lock-out is about mode changes: restarts of the same mode (inputs back,
                // battery low) do not close the window again.
                if (new_mode) mode_started_ = clock_.now();
                new_mode = false;
                ever_started_ = true;
                log_.info("MODE START {} {}", to_string(mode_), op_dict(op_));
                current = g.spawn(mode_task(mode_, generation_), fmt::format("mode {}", to_string(mode_)));
                running = true;
            }
            io_.changed();
            co_await wake_.wait();
            wake_.clear();
        }
    };
    co_await with_group(body);
}

} // namespace moat::inverter
