// How late the loop runs a timer: a 50 ms timer measures its own lateness and
// every 5 s the host logs the p50, p99 and maximum at debug level, e.g.
//   DEBUG [host] loop lag #7: p50 0.08 ms, p99 0.93 ms, max 2.10 ms (100 samples)
// A long soak reads these lines (test/soak/); they cost nothing unless the
// host logs at debug level when it starts.
#pragma once

#include "moat/log.hpp"
#include "moat/loop.hpp"

#include <cstdint>
#include <vector>

struct uv_timer_s;  // libuv's uv_timer_t (the .cpp includes libuv)

namespace moat {

class LoopLagSampler {
public:
    LoopLagSampler(Loop& loop, Logger log, Duration period = std::chrono::milliseconds(50),
                   Duration report = std::chrono::seconds(5));
    ~LoopLagSampler();
    LoopLagSampler(const LoopLagSampler&) = delete;
    LoopLagSampler& operator=(const LoopLagSampler&) = delete;

    /// "p50 .. ms, p99 .. ms, max .. ms (N samples)" of the lateness in
    /// nanoseconds; "no samples" when empty. Sorts `ns`.
    static std::string summary(std::vector<std::uint64_t>& ns);

private:
    void arm();
    void fired();

    Logger log_;
    uv_timer_s* timer_;
    std::uint64_t period_ns_;
    std::uint64_t report_ns_;
    std::uint64_t due_ns_ = 0;
    std::uint64_t window_start_ns_ = 0;
    std::vector<std::uint64_t> samples_;
    std::uint64_t reports_ = 0;  ///< numbers the lines: the logger folds identical repeats
};

} // namespace moat
