// Drives the model on the loop's clock: every `interval` the system advances
// by the time that really passed on that clock, then `after_step` runs (the
// plugin publishes there). With a VirtualClock an hour passes in moments.
#pragma once

#include <chrono>
#include <functional>

#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "model.hpp"

namespace moat::sim {

inline Task<void> run_clocked(Loop& loop, System& sys, Duration interval, std::function<Task<void>()> after_step) {
    auto last = loop.clock().now();
    for (;;) {
        // Sleep to the next multiple of the interval, so slow publishing does not drift the rate.
        auto next = last + interval;
        auto now = loop.clock().now();
        if (next > now) co_await sleep_for(next - now);
        now = loop.clock().now();
        sys.advance(std::chrono::duration<double>(now - last).count());
        last = now;
        auto step = after_step();
        co_await step;
    }
}

} // namespace moat::sim
