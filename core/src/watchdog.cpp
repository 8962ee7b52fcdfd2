#include "watchdog.hpp"

#include <csignal>
#include <cstring>
#include <string>
#include <sys/time.h>
#include <unistd.h>

namespace moat {

namespace {

// The signal handler can reach no object but these (one loop per process).
Loop* watched_loop = nullptr;
char limit_text[32];
int watchdog_exit_code = 5;

void put(const char* s) { [[maybe_unused]] auto n = ::write(STDERR_FILENO, s, std::strlen(s)); }

void on_alarm(int) {
    const char* what = watched_loop ? watched_loop->running() : nullptr;
    put("ERROR [host] loop watchdog: the event loop stalled for more than ");
    put(limit_text);
    put(" s");
    if (what) {
        put(" while running '");
        put(what);
        put("'");
    } else {
        put(" (no task was running: a libuv callback blocked)");
    }
    put("; exiting so that the supervisor restarts us\n");
    _exit(watchdog_exit_code);
}

itimerval interval(Duration d) {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    itimerval v{};
    v.it_value.tv_sec = us / 1000000;
    v.it_value.tv_usec = us % 1000000;
    return v;
}

} // namespace

LoopWatchdog::LoopWatchdog(Loop& loop, Duration limit, int exit_code) {
    if (limit <= Duration::zero()) return;
    watched_loop = &loop;
    watchdog_exit_code = exit_code;
    std::snprintf(limit_text, sizeof limit_text, "%.3g", std::chrono::duration<double>(limit).count());
    struct sigaction sa {};
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, nullptr);

    timer_ = new uv_timer_t;
    uv_timer_init(loop.uv(), timer_);
    static itimerval armed;
    armed = interval(limit);
    auto pet = [](uv_timer_t*) { setitimer(ITIMER_REAL, &armed, nullptr); };
    auto every = std::max<std::uint64_t>(10, std::chrono::duration_cast<std::chrono::milliseconds>(limit).count() / 3);
    uv_timer_start(timer_, pet, 0, every);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));  // the watchdog alone keeps nothing alive
    setitimer(ITIMER_REAL, &armed, nullptr);
}

LoopWatchdog::~LoopWatchdog() {
    if (!timer_) return;
    itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    signal(SIGALRM, SIG_DFL);
    watched_loop = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

} // namespace moat
