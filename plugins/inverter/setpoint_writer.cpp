#include "setpoint_writer.hpp"

#include <fmt/format.h>
#include <moat/monitor.hpp>

#include "controller.hpp"

namespace moat::inverter {

namespace {
double secs(Duration d) { return std::chrono::duration<double>(d).count(); }
std::string phase_path(std::size_t k) { return fmt::format("/Hub4/L{}/AcPowerSetpoint", k + 1); }
} // namespace

SetpointWriter::SetpointWriter(SetpointIo& io, Clock& clock, Logger log, bool fake, Duration stop_write_timeout)
    : io_(io), clock_(clock), log_(std::move(log)), fake_(fake), stop_write_timeout_(stop_write_timeout) {}

std::string SetpointWriter::target() {
    std::string vb = io_.vebus();
    if (!vb.empty()) last_vebus_ = vb;
    return last_vebus_;
}

bool SetpointWriter::begin(std::vector<double>& setpoints, bool safe) {
    ++generation_;  // whatever write is still going stops before its next phase
    GuardDecision d = io_.guard_now();
    if (!(safe ? d.may_write_safe && !last_vebus_.empty() : d.may_write)) {
        if (!safe && last_skip_ != d.write_problem)
            log_.warning("not writing {}: {}", set_line(setpoints, false), d.write_problem);
        last_skip_ = d.write_problem;
        skipped_ = std::move(setpoints);
        return false;
    }
    if (!d.may_write)
        log_.warning("writing the safe setpoints to {} although {}", last_vebus_, d.write_problem);
    last_skip_.clear();
    skipped_.reset();
    log_.info("{}", set_line(setpoints, false));
    last_written_ = setpoints;
    last_write_ = clock_.now();
    return true;
}

Task<void> SetpointWriter::write(std::vector<double> setpoints, Duration timeout, const char* fault) {
    if (fake_) {
        log_.error("{}", set_line(setpoints, true));
        co_return;
    }
    const std::string vb = target();
    if (!begin(setpoints, false)) co_return;
    const std::uint64_t mine = generation_;
    for (std::size_t k = 0; k < setpoints.size(); ++k) {
        if (k == 1 && fault) io_.fault_point(fault);  // a failure between two phases' writes
        if (generation_ != mine) {
            log_.debug("{} stopped after L{}: a newer write began", set_line(setpoints, false), k);
            break;
        }
        int rc = co_await io_.set_value(vb, phase_path(k), setpoints[k], timeout);
        if (rc != 0) log_.warning("writing {} on {} failed ({})", phase_path(k), vb, rc);
    }
    io_.changed();
}

Task<void> SetpointWriter::write_safe(std::vector<double> setpoints) {
    std::string problem;
    if (fake_) {
        log_.error("{}", set_line(setpoints, true));
    } else if (const std::string vb = target(); !begin(setpoints, true)) {
        problem = fmt::format("not written: {}", last_skip_);  // not written is not safe
    } else {
        // Every phase at once, each with the whole budget: a hanging L1 must
        // not keep L2 and L3 from their safe setpoint.
        std::vector<std::string> failed(setpoints.size());
        auto body = [&](TaskGroup& g) -> Task<void> {
            for (std::size_t k = 0; k < setpoints.size(); ++k)
                g.spawn(write_phase(vb, k, setpoints[k], failed[k]), fmt::format("safe L{}", k + 1));
            co_return;
        };
        co_await with_group(body);
        for (std::size_t k = 0; k < failed.size(); ++k)
            if (!failed[k].empty()) problem += fmt::format("{}L{} {}", problem.empty() ? "" : ", ", k + 1, failed[k]);
    }
    safe_state_ = problem.empty() ? "reached" : "not reached: " + problem;
    if (!problem.empty()) log_.error("safe state not reached: {}", problem);
    io_.changed();
}

Task<void> SetpointWriter::write_phase(std::string vb, std::size_t k, double value, std::string& failed) {
    const std::string path = phase_path(k);
    int rc = co_await io_.set_value(vb, path, value, stop_write_timeout_);
    if (rc == -1)
        failed = fmt::format("not confirmed: no reply within {:.1f} s, an error reply or no {} on {}",
                             secs(stop_write_timeout_), path, vb.empty() ? "vebus service" : vb);
    else if (rc != 0)
        failed = fmt::format("refused by {} ({})", vb, rc);
}

Task<void> SetpointWriter::refresh(Duration interval, std::function<bool()> inputs_ok) {
    for (;;) {
        co_await sleep_for(interval / 4);
        io_.fault_point("refresh");
        if (!inputs_ok()) continue;
        if (skipped_ && io_.guard_now().may_write) {
            auto sp = *skipped_;
            co_await write(std::move(sp), Monitor::call_timeout);
            continue;
        }
        if (last_written_.empty() || !last_write_) continue;
        if (clock_.now() - *last_write_ >= interval) co_await write(last_written_, Monitor::call_timeout);
    }
}

} // namespace moat::inverter
