// Exits that must work while the loop is blocked (a plugin stuck in a
// synchronous call): they run in signal handlers, not on the loop.
//
// - The loop watchdog: if the loop does not come round for `limit`, SIGALRM
//   logs what was running and ends the process (exit 5) so the supervisor
//   restarts us. No thread: the loop re-arms an interval timer.
// - The stop deadline: once stopping, the same timer is set to a final
//   deadline that the loop can no longer postpone (exit 6).
// - The second SIGTERM/SIGINT while stopping exits at once (exit 6).
// Before any of these exits, the emergency cleanup (e.g. stopping the demo's
// dbus-daemon) runs; it must be async-signal-safe.
#pragma once

#include "moat/loop.hpp"

struct uv_timer_s;  // libuv's uv_timer_t (the .cpp includes libuv)

namespace moat {

/// Async-signal-safe cleanup run before every last-resort exit.
void set_emergency_cleanup(void (*cleanup)());
/// Run the emergency cleanup and _exit(code), printing `message` first.
[[noreturn]] void emergency_exit(int code, const char* message);

class LoopWatchdog {
public:
    /// `limit` zero or negative: no watchdog (the stop deadline still works).
    LoopWatchdog(Loop& loop, Duration limit, int exit_code);
    ~LoopWatchdog();
    LoopWatchdog(const LoopWatchdog&) = delete;
    LoopWatchdog& operator=(const LoopWatchdog&) = delete;

    /// Stop watching the loop; instead end the process with `exit_code` once
    /// `d` has passed, whatever the loop does.
    void final_deadline(Duration d, int exit_code);

private:
    uv_timer_s* timer_ = nullptr;
};

/// From now on SIGTERM and SIGINT end the process at once with `exit_code`,
/// even while the loop is blocked.
void exit_at_once_on_stop_signals(int exit_code);

} // namespace moat
