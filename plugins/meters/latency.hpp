// The adaptive request timeout (spec §7.3): the worst latency of each update
// goes into an 8-slot window; the estimate follows the window's maximum,
// quickly upwards (0.75 of a rise) and slowly downwards (0.25 of a fall);
// the timeout is four times the estimate, at least the meter's min_timeout.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstddef>
#include <span>

namespace moat::meters {

class LatencyFilter {
public:
    using Seconds = std::chrono::duration<double>;

    /// Starts with every slot and the estimate at `initial` (the timeout in force).
    explicit LatencyFilter(Seconds initial) : estimate_(initial) { slots_.fill(initial); }

    /// Feed the latencies of one update (all its block reads); returns the
    /// new estimate. An update that read nothing changes nothing.
    Seconds add(std::span<const Seconds> latencies)
    {
        if (latencies.empty()) return estimate_;
        slots_[next_] = *std::max_element(latencies.begin(), latencies.end());
        next_ = (next_ + 1) % slots_.size();
        const Seconds worst = *std::max_element(slots_.begin(), slots_.end());
        estimate_ = worst > estimate_ ? 0.25 * estimate_ + 0.75 * worst : 0.75 * estimate_ + 0.25 * worst;
        return estimate_;
    }

    Seconds estimate() const noexcept { return estimate_; }

    /// max(min_timeout, 4 × estimate).
    Seconds timeout(Seconds min_timeout) const noexcept { return std::max(min_timeout, 4 * estimate_); }

private:
    std::array<Seconds, 8> slots_{};
    std::size_t next_ = 0;
    Seconds estimate_;
};

} // namespace moat::meters
