// A fake SupervisorIo for the tests of the supervisor and of what drives it
// (the safety watch): its modes run, fail or end on cue, and it records what
// happened with the virtual time.
#pragma once

#include <chrono>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "supervisor.hpp"

namespace moat::inverter::test {

using namespace std::chrono_literals;

struct FakeSupervisorIo final : SupervisorIo {
    explicit FakeSupervisorIo(Clock& c) : clock(c), t0(c.now()) {}
    Clock& clock;
    TimePoint t0;
    std::map<Mode, Duration> fail_after, end_after;  ///< modes that throw / return after a while
    std::map<Mode, Duration> abort_after;            ///< modes that throw ModeAbort after a while
    std::vector<std::string> events;                 ///< "<t> start|stop <mode>", "<t> safe <why>"
    Op* running_op = nullptr;                        ///< the running mode's op
    int changes = 0;

    void event(const std::string& what) {
        events.push_back(fmt::format("{:.1f} {}", std::chrono::duration<double>(clock.now() - t0).count(), what));
    }
    Task<void> run_mode(Mode mode, Op& op) override {
        event(fmt::format("start {}", to_string(mode)));
        running_op = &op;
        try {
            if (auto it = fail_after.find(mode); it != fail_after.end()) {
                co_await sleep_for(it->second);
                throw std::runtime_error("boom");
            }
            if (auto it = abort_after.find(mode); it != abort_after.end()) {
                co_await sleep_for(it->second);
                throw ModeAbort("lost the BMS");
            }
            if (auto it = end_after.find(mode); it != end_after.end()) {
                co_await sleep_for(it->second);
                running_op = nullptr;
                co_return;
            }
            for (;;) co_await sleep_for(1h);
        } catch (const Cancelled&) {
            event(fmt::format("stop {}", to_string(mode)));
            running_op = nullptr;
            throw;
        }
    }
    Task<void> write_safe(const char* why) override {
        event(fmt::format("safe {}", why));
        co_return;
    }
    int n_phase() override { return 3; }
    void changed() override { ++changes; }
};

} // namespace moat::inverter::test
