// The loop watchdog: if the loop does not come round for `limit`, a SIGALRM
// handler logs what was running and ends the process (exit code 5) so the
// supervisor restarts us. No thread: the loop re-arms an interval timer.
#pragma once

#include "moat/loop.hpp"

namespace moat {

class LoopWatchdog {
public:
    /// `limit` zero or negative: no watchdog. `exit_code` is what the process ends with.
    LoopWatchdog(Loop& loop, Duration limit, int exit_code);
    ~LoopWatchdog();
    LoopWatchdog(const LoopWatchdog&) = delete;
    LoopWatchdog& operator=(const LoopWatchdog&) = delete;

private:
    uv_timer_t* timer_ = nullptr;
};

} // namespace moat
