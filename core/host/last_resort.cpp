#include "last_resort.hpp"
#include "uv_loop.hpp"

#include <csignal>
#include <cstdio>
#include <cstring>
#include <sys/time.h>
#include <unistd.h>

namespace moat {

namespace {

// Signal handlers can reach no object but these (one host per process).
Loop* watched_loop = nullptr;
char limit_text[32];
int alarm_exit_code = 5;
bool final_deadline_armed = false;
int stop_signal_exit_code = 6;
void (*emergency_cleanup)() = nullptr;

void put(const char* s) { [[maybe_unused]] auto n = ::write(STDERR_FILENO, s, std::strlen(s)); }

void on_alarm(int) {
    const char* what = watched_loop ? watched_loop->running() : nullptr;
    if (final_deadline_armed) {
        // Worded like the loop's own backstop message, which could not run.
        put("ERROR [host] plugins did not stop in time (");
        put(what ? what : "unknown");
        put("); exiting anyway: the loop is blocked\n");
        emergency_exit(alarm_exit_code, nullptr);
    } else {
        put("ERROR [host] loop watchdog: the event loop stalled for more than ");
        put(limit_text);
        put(" s");
    }
    if (what) {
        put(" while running '");
        put(what);
        put("'");
    } else {
        put(" (no task was running: a libuv callback blocked)");
    }
    put("; exiting so that the supervisor restarts us\n");
    emergency_exit(alarm_exit_code, nullptr);
}

void on_stop_signal(int signum) {
    put(signum == SIGINT ? "ERROR [host] Interrupt" : "ERROR [host] Terminated");
    emergency_exit(stop_signal_exit_code, " again while stopping: exiting at once\n");
}

itimerval interval(Duration d) {
    auto us = std::max<long long>(1, std::chrono::duration_cast<std::chrono::microseconds>(d).count());
    itimerval v{};
    v.it_value.tv_sec = us / 1000000;
    v.it_value.tv_usec = us % 1000000;
    return v;
}

void install(int signum, void (*handler)(int)) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sigemptyset(&sa.sa_mask);
    sigaction(signum, &sa, nullptr);
}

} // namespace

void set_emergency_cleanup(void (*cleanup)()) { emergency_cleanup = cleanup; }

void emergency_exit(int code, const char* message) {
    if (message) put(message);
    if (emergency_cleanup) emergency_cleanup();
    _exit(code);
}

LoopWatchdog::LoopWatchdog(Loop& loop, Duration limit, int exit_code) {
    watched_loop = &loop;
    install(SIGALRM, on_alarm);
    if (limit <= Duration::zero()) return;
    alarm_exit_code = exit_code;
    std::snprintf(limit_text, sizeof limit_text, "%.3g", std::chrono::duration<double>(limit).count());
    timer_ = new uv_timer_t;
    uv_timer_init(detail::uv_loop(loop), timer_);
    static itimerval armed;
    armed = interval(limit);
    auto pet = [](uv_timer_t*) { setitimer(ITIMER_REAL, &armed, nullptr); };
    auto every = std::max<std::uint64_t>(10, std::chrono::duration_cast<std::chrono::milliseconds>(limit).count() / 3);
    uv_timer_start(timer_, pet, 0, every);
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));  // the watchdog alone keeps nothing alive
    setitimer(ITIMER_REAL, &armed, nullptr);
}

void LoopWatchdog::final_deadline(Duration d, int exit_code) {
    if (timer_) uv_timer_stop(timer_);
    final_deadline_armed = true;
    alarm_exit_code = exit_code;
    auto v = interval(d);
    setitimer(ITIMER_REAL, &v, nullptr);
}

LoopWatchdog::~LoopWatchdog() {
    itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    signal(SIGALRM, SIG_DFL);
    watched_loop = nullptr;
    final_deadline_armed = false;
    if (timer_)
        uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void exit_at_once_on_stop_signals(int exit_code) {
    stop_signal_exit_code = exit_code;
    install(SIGTERM, on_stop_signal);
    install(SIGINT, on_stop_signal);
}

} // namespace moat
