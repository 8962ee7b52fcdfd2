// Telling a fix that holds from a write war: something else keeps setting a
// value back right after we corrected it. A guard that simply fixed again
// would loop with the other writer forever; this decides when to stop and
// report instead. Pure: the caller passes the time.
#pragma once

#include <chrono>
#include <optional>

namespace moat::critical {

struct WriteWarPolicy {
    /// A bad value this soon after our fix counts as turning it back.
    std::chrono::steady_clock::duration window = std::chrono::seconds(10);
    /// This many fixes turned back in a row make a write war.
    int limit = 3;
};

/// One per fixable value.
class WriteWar {
public:
    using TimePoint = std::chrono::steady_clock::time_point;

    explicit WriteWar(WriteWarPolicy policy = {}) : policy_(policy) {}

    /// Our write of the safe value was read back at `t`.
    void fixed(TimePoint t) { last_fix_ = t; }
    /// The value turned bad at `t`. Counts a turn-back when it came within
    /// the window after our last fix (a later one starts counting afresh;
    /// one without a fix of ours since the last call changes nothing).
    /// True when this is (or continues) a write war: do not fix again.
    bool turned_back(TimePoint t);
    /// Whether a fix may be written now (false during a write war).
    bool may_fix() const { return !war_; }
    bool at_war() const { return war_; }
    /// Turn-backs counted in a row so far.
    int turn_backs() const { return turn_backs_; }
    /// The value is good again without our write (the other writer gave up,
    /// or somebody set it by hand): forget the war.
    void calm();

private:
    WriteWarPolicy policy_;
    std::optional<TimePoint> last_fix_;
    int turn_backs_ = 0;
    bool war_ = false;
};

} // namespace moat::critical
