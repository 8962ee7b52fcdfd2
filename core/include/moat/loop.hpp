// The event loop (one libuv loop, one thread, hidden behind this class) and
// its clocks. File descriptors, TCP and serial ports on the loop: moat/io.hpp.
#pragma once

#include "moat/export.hpp"

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

namespace moat {

using Duration = std::chrono::nanoseconds;
using TimePoint = std::chrono::steady_clock::time_point;

/// Time source and timers. The loop's RealClock uses libuv timers; tests inject
/// a VirtualClock so hours of control-loop time pass in milliseconds.
class MOAT_API Clock {
public:
    using TimerId = std::uint64_t;
    virtual ~Clock() = default;
    virtual TimePoint now() const = 0;
    /// Call `fn` once at `when` (from the loop, never from inside this call).
    virtual TimerId schedule(TimePoint when, std::function<void()> fn) = 0;
    /// Forget a timer; harmless when it already fired.
    virtual void cancel(TimerId id) = 0;
};

/// RAII timer on a Clock: cancelled when destroyed.
class MOAT_API Timer {
public:
    Timer() = default;
    Timer(Clock& clock, TimePoint when, std::function<void()> fn) : clock_(&clock), id_(clock.schedule(when, std::move(fn))) {}
    Timer(Timer&& o) noexcept : clock_(o.clock_), id_(std::exchange(o.id_, 0)) {}
    Timer& operator=(Timer&& o) noexcept {
        if (this != &o) { reset(); clock_ = o.clock_; id_ = std::exchange(o.id_, 0); }
        return *this;
    }
    ~Timer() { reset(); }
    void reset() {
        if (id_) clock_->cancel(std::exchange(id_, 0));
    }

private:
    Clock* clock_ = nullptr;
    Clock::TimerId id_ = 0;
};

namespace detail {
struct Fiber;
struct LoopAccess;  ///< the library's own handles on the libuv loop (lib/uv_loop.hpp)
} // namespace detail

/// Who answers for the code a fiber runs (the host makes one per plugin
/// instance run). A function posted or a timer scheduled while an owner's
/// code runs belongs to that owner: an exception escaping it is handed to
/// callback_failed() instead of unwinding through libuv.
class MOAT_API LoopOwner {
public:
    virtual ~LoopOwner() = default;
    /// `where`: "a posted function" or "a timer callback".
    virtual void callback_failed(std::exception_ptr error, const char* where) = 0;
};

/// What the loop does with an exception escaping a callback nobody owns
/// (core code): `running` names what was running when it was posted.
using UnownedFailureHandler = std::function<void(std::exception_ptr error, const char* where, const std::string& running)>;

/// The loop: owns the uv loop, a queue of work to run on the next turn (every
/// coroutine resumption goes through it, so nothing re-enters), and the clock.
class MOAT_API Loop {
public:
    Loop();
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    Clock& clock() { return *clock_; }
    /// Replace the clock (tests: a VirtualClock). The loop does not own it.
    void set_clock(Clock& clock) { clock_ = &clock; }
    void use_real_clock();

    /// Run `fn` on the next loop turn.
    void post(std::function<void()> fn);
    /// Resume a suspended coroutine of `fiber` on the next loop turn.
    void post_resume(detail::Fiber* fiber, std::coroutine_handle<> h);
    /// Run everything queued (and what that queues); true when anything ran.
    bool run_ready();

    /// Run until stop() or nothing is left to wait for.
    void run();
    /// Run one non-blocking turn.
    void run_once_nowait();
    void stop();
    /// Whether anything (a timer, an fd watch, a connection) still keeps the loop running.
    bool alive() const;

    /// The owner of the code running now (null: core code, or none known).
    const std::shared_ptr<LoopOwner>& owner() const;
    /// Handle exceptions escaping unowned callbacks. Without a handler the
    /// loop stops and run() rethrows the first one.
    void on_unowned_failure(UnownedFailureHandler handler) { unowned_failure_ = std::move(handler); }

    /// Run `fn` as a callback of `owner` (captured when it was posted or
    /// scheduled; `owned` false for core code): an escaping exception goes to
    /// the owner, or to the unowned-failure handler. For clocks.
    struct CallbackOrigin {
        std::weak_ptr<LoopOwner> owner;
        bool owned = false;
        std::string running;  ///< what was running when it was posted or scheduled
    };
    CallbackOrigin origin() const;
    void invoke(const CallbackOrigin& origin, const char* where, const std::function<void()>& fn);
    /// Rethrow (once) an unowned failure that found no handler; run() does.
    void rethrow_pending();

    /// What code is running right now, for the loop watchdog: the fiber's name,
    /// or a fixed label; nullptr when the loop is idle. Readable from a signal handler.
    const char* running() const { return running_.load(std::memory_order_relaxed); }
    void set_running(const char* what) { running_.store(what, std::memory_order_relaxed); }

private:
    struct Item {
        detail::Fiber* fiber;
        std::coroutine_handle<> handle;
        std::function<void()> fn;
        CallbackOrigin origin;  ///< for fn
    };

    struct Uv;  ///< the libuv loop and its idle handle (lib/loop.cpp)
    friend struct detail::LoopAccess;
    std::unique_ptr<Uv> uv_;
    std::deque<Item> ready_;
    std::unique_ptr<Clock> real_clock_;
    Clock* clock_;
    std::atomic<const char*> running_{nullptr};
    detail::Fiber* fiber_ = nullptr;     ///< the fiber being resumed
    std::shared_ptr<LoopOwner> owner_;  ///< of the callback running, when no fiber is
    UnownedFailureHandler unowned_failure_;
    std::exception_ptr pending_;  ///< an unowned failure without a handler, for run()
};

/// A clock that only moves when told to. advance() fires due timers in order
/// and lets the loop's queued work run between them.
class MOAT_API VirtualClock final : public Clock {
public:
    explicit VirtualClock(Loop& loop, TimePoint start = TimePoint{} + std::chrono::hours(1));
    TimePoint now() const override { return now_; }
    TimerId schedule(TimePoint when, std::function<void()> fn) override;
    void cancel(TimerId id) override;
    /// Move time forward by `d`, running every timer that falls due.
    void advance(Duration d);
    /// Number of timers waiting.
    std::size_t pending() const { return timers_.size(); }

private:
    Loop& loop_;
    TimePoint now_;
    TimerId next_id_ = 1;
    struct Entry {
        TimerId id;
        std::function<void()> fn;
        Loop::CallbackOrigin origin;
    };
    std::multimap<TimePoint, Entry> timers_;
};

} // namespace moat
