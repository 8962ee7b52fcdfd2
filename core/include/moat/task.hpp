// Tasks: C++20 coroutines on the loop, with structured concurrency.
//
// Rules (each has a unit test in test/unit/test_task.cpp):
// - Task<T> is lazy; it runs when awaited or spawned into a TaskGroup.
// - A task runs inside a tree of cancel scopes. Cancelling a scope makes the
//   awaitable the task is suspended in (and every later one) throw Cancelled.
//   Every awaitable the core offers honours it: sleep_for, Event, D-Bus calls.
// - with_timeout(d, task) cancels the task after d and throws TimeoutError.
// - shielded(task, deadline) runs cleanup that still may co_await while the
//   surrounding task is being cancelled; only its own deadline stops it.
// - with_group(body): the body spawns children; the group ends only after all
//   of them; the first failure cancels the siblings and the body and is
//   re-raised in the owner.
//
// g++ 12 miscompiles two patterns: never co_await inside a braced initialiser, and
// never pass a lambda with non-trivial captures as a temporary inside a
// co_await expression; bind it to a local first.
#pragma once

#include "moat/export.hpp"

#include <cassert>
#include <coroutine>
#include <exception>
#include <list>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "moat/loop.hpp"

namespace moat {

/// Thrown into a task whose scope was cancelled. Catch it only to clean up; rethrow it.
class MOAT_API Cancelled : public std::exception {
public:
    const char* what() const noexcept override { return "cancelled"; }
};

/// Thrown by with_timeout (and a shielded scope whose deadline passed).
class MOAT_API TimeoutError : public std::runtime_error {
public:
    TimeoutError() : std::runtime_error("timed out") {}
    using std::runtime_error::runtime_error;
};

namespace detail {

struct Fiber;

/// A node in the cancellation tree.
struct MOAT_API Scope {
    Scope(Fiber& fiber, Scope* parent, bool shield);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

    /// Cancel this scope and every unshielded scope below it (also in child fibers).
    void cancel();
    /// Cancelled here or in an ancestor up to the nearest shield.
    bool effectively_cancelled() const;

    Fiber* fiber;
    Scope* parent;
    bool shield;
    bool cancelled = false;
    std::vector<Scope*> children;
};

/// The awaitable a fiber is suspended in, so a cancellation can interrupt it.
struct MOAT_API Waiter {
    virtual void cancel() = 0;

protected:
    ~Waiter() = default;
};

/// One strand of execution: the coroutines awaiting each other in a chain.
struct MOAT_API Fiber {
    Loop* loop;
    std::string name;
    Scope* current = nullptr;
    Waiter* waiter = nullptr;
    std::shared_ptr<LoopOwner> owner = nullptr;  ///< inherited by the fibers it spawns
};

/// Enter a scope for the lifetime of this object (LIFO within a fiber).
class MOAT_API ScopeGuard {
public:
    ScopeGuard(Fiber& fiber, bool shield) : scope_(fiber, fiber.current, shield), saved_(fiber.current) {
        fiber.current = &scope_;
    }
    ~ScopeGuard() { scope_.fiber->current = saved_; }
    Scope& scope() { return scope_; }

private:
    Scope scope_;
    Scope* saved_;
};

struct MOAT_API PromiseBase {
    Fiber* fiber = nullptr;
    std::coroutine_handle<> continuation;
    std::exception_ptr error;
    /// For a root task (no continuation): called when it finished.
    void (*on_done)(void*) = nullptr;
    void* on_done_arg = nullptr;

    std::suspend_always initial_suspend() noexcept { return {}; }
    struct FinalAwaiter {
        bool await_ready() noexcept { return false; }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
            auto& p = h.promise();
            if (p.continuation) return p.continuation;
            if (p.on_done) p.on_done(p.on_done_arg);
            return std::noop_coroutine();
        }
        void await_resume() noexcept {}
    };
    FinalAwaiter final_suspend() noexcept { return {}; }
    void unhandled_exception() noexcept { error = std::current_exception(); }
};

/// The promise's result storage: a value, or nothing for Task<void>.
template <class T>
struct ResultPromise : PromiseBase {
    std::optional<T> value;
    template <class U>
    void return_value(U&& v) { value.emplace(std::forward<U>(v)); }
    T take() { return std::move(*value); }
};
template <>
struct ResultPromise<void> : PromiseBase {
    void return_void() {}
    void take() {}
};

/// Gives a coroutine its own fiber: `Fiber& f = co_await this_fiber();`
struct MOAT_API ThisFiber {
    Fiber* fiber = nullptr;
    bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        fiber = h.promise().fiber;
        return false;
    }
    Fiber& await_resume() noexcept { return *fiber; }
};
inline ThisFiber this_fiber() { return {}; }

} // namespace detail

/// A lazily started coroutine returning T.
template <class T = void>
class [[nodiscard]] Task {
public:
    struct promise_type : detail::ResultPromise<T> {
        Task get_return_object() { return Task(std::coroutine_handle<promise_type>::from_promise(*this)); }
    };
    using Handle = std::coroutine_handle<promise_type>;

    Task() = default;
    explicit Task(Handle h) : h_(h) {}
    Task(Task&& o) noexcept : h_(std::exchange(o.h_, {})) {}
    Task& operator=(Task&& o) noexcept {
        if (this != &o) { destroy(); h_ = std::exchange(o.h_, {}); }
        return *this;
    }
    ~Task() { destroy(); }

    struct Awaiter {
        Handle h;
        bool await_ready() noexcept { return !h || h.done(); }
        template <class P>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<P> parent) noexcept {
            h.promise().fiber = parent.promise().fiber;
            h.promise().continuation = parent;
            return h;
        }
        T await_resume() {
            if (!h) throw std::logic_error("awaiting an empty Task");
            if (h.promise().error) std::rethrow_exception(h.promise().error);
            return h.promise().take();
        }
    };
    Awaiter operator co_await() && noexcept { return Awaiter{h_}; }
    Awaiter operator co_await() & noexcept { return Awaiter{h_}; }

    Handle handle() const { return h_; }
    Handle release() { return std::exchange(h_, {}); }
    explicit operator bool() const { return bool(h_); }

private:
    void destroy() {
        if (h_) h_.destroy();
        h_ = {};
    }
    Handle h_;
};

/// Base of every leaf awaitable: handles the cancellation protocol.
/// A derived class implements start() (begin the operation; call complete()
/// when it is done, possibly at once) and abort() (stop the operation so that
/// complete() is not called). Resumption always happens on a later loop turn.
class MOAT_API Suspension : public detail::Waiter {
public:
    bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        fiber_ = h.promise().fiber;
        handle_ = h;
        if (cancellable_ && fiber_->current && fiber_->current->effectively_cancelled()) {
            cancelled_ = true;
            return false;
        }
        if (cancellable_) fiber_->waiter = this;
        suspended_ = true;
        start();
        return true;
    }
    void await_resume() const {
        if (cancelled_) throw Cancelled();
    }

protected:
    explicit Suspension(bool cancellable = true) : cancellable_(cancellable) {}
    ~Suspension() = default;
    virtual void start() = 0;
    virtual void abort() = 0;

    void complete() {
        if (!suspended_) return;
        suspended_ = false;
        if (fiber_->waiter == this) fiber_->waiter = nullptr;
        fiber_->loop->post_resume(fiber_, handle_);
    }
    void cancel() override {
        if (!suspended_) return;
        suspended_ = false;
        fiber_->waiter = nullptr;
        cancelled_ = true;
        abort();
        fiber_->loop->post_resume(fiber_, handle_);
    }
    Loop& loop() const { return *fiber_->loop; }

private:
    detail::Fiber* fiber_ = nullptr;
    std::coroutine_handle<> handle_;
    bool cancellable_;
    bool cancelled_ = false;
    bool suspended_ = false;
};

/// The awaitable of sleep_for().
class [[nodiscard]] Sleep final : public Suspension {
public:
    explicit Sleep(Duration d) : d_(d) {}

private:
    void start() override {
        timer_ = Timer(loop().clock(), loop().clock().now() + d_, [this] { complete(); });
    }
    void abort() override { timer_.reset(); }
    Duration d_;
    Timer timer_;
};

/// Suspend for `d` on the loop's clock (cancellable).
inline Sleep sleep_for(Duration d) { return Sleep(d); }

/// The awaitable of checkpoint().
class [[nodiscard]] Checkpoint final : public Suspension {
    void start() override { loop().post([this] { complete(); }); }
    void abort() override {}
};
/// Let other ready work run, and raise Cancelled if this task was cancelled.
inline Checkpoint checkpoint() { return {}; }

/// A manual-reset event: wait() suspends until set().
class MOAT_API Event {
public:
    Event() = default;
    Event(const Event&) = delete;
    Event& operator=(const Event&) = delete;
    ~Event() { assert(waiters_.empty()); }

    void set();
    void clear() { set_ = false; }
    bool is_set() const { return set_; }

    class [[nodiscard]] Wait final : public Suspension {
    public:
        Wait(Event& ev, bool cancellable) : Suspension(cancellable), ev_(ev) {}

    private:
        friend class Event;
        void start() override {
            if (ev_.set_) complete();
            else ev_.waiters_.push_back(this);
        }
        void abort() override { ev_.waiters_.remove(this); }
        Event& ev_;
    };
    Wait wait() { return Wait(*this, true); }
    /// A wait that cancellation does not interrupt (for joins that must not end early).
    Wait wait_uncancellable() { return Wait(*this, false); }

private:
    bool set_ = false;
    std::list<Wait*> waiters_;
};

inline void Event::set() {
    set_ = true;
    auto ws = std::move(waiters_);
    waiters_.clear();
    for (auto* w : ws) w->complete();
}

namespace detail {
/// Run `task` in a new scope of its fiber, optionally shielded from outer
/// cancellation, cancelled at `deadline` (absolute) or `timeout` after the start.
template <class T>
Task<T> run_scoped(Task<T> task, bool shield, std::optional<Duration> timeout, std::optional<TimePoint> deadline,
                   const char* timeout_message) {
    Fiber& f = co_await this_fiber();
    ScopeGuard guard(f, shield);
    bool timed_out = false;
    Timer timer;
    if (timeout || deadline)
        timer = Timer(f.loop->clock(), deadline ? *deadline : f.loop->clock().now() + *timeout, [&] {
            timed_out = true;
            guard.scope().cancel();
        });
    bool cancelled = false;
    try {
        co_return co_await task;
    } catch (const Cancelled&) {
        cancelled = true;
    }
    // Only our own deadline turns into a timeout; an outer cancel stays a
    // cancel (a shielded scope has no outer cancel).
    bool outer = !shield && guard.scope().parent && guard.scope().parent->effectively_cancelled();
    if (cancelled && timed_out && !outer) throw TimeoutError(timeout_message);
    throw Cancelled();
}
} // namespace detail

/// Run `task` with a deadline: cancelled after `d`, then TimeoutError.
template <class T>
Task<T> with_timeout(Duration d, Task<T> task) {
    return detail::run_scoped(std::move(task), false, d, std::nullopt, "timed out");
}

/// Run cleanup `task` shielded from the surrounding cancellation. `deadline`
/// (absolute) bounds it: it is cancelled then and TimeoutError is raised.
template <class T>
Task<T> shielded(Task<T> task, std::optional<TimePoint> deadline = std::nullopt) {
    return detail::run_scoped(std::move(task), true, std::nullopt, deadline, "shielded cleanup passed its deadline");
}

class TaskGroup;

/// A handle on a spawned child: cancel it, or wait for it to end.
class MOAT_API TaskRef {
public:
    TaskRef() = default;
    void cancel();
    bool done() const;
    /// Wait until the child ended (never throws the child's error; the group does).
    Event::Wait join();

private:
    friend class TaskGroup;
    struct Child;
    explicit TaskRef(std::shared_ptr<Child> c) : child_(std::move(c)) {}
    std::shared_ptr<Child> child_;
};

/// Structured concurrency. Create one with with_group(); see the file comment.
class MOAT_API TaskGroup {
public:
    TaskGroup(const TaskGroup&) = delete;
    TaskGroup& operator=(const TaskGroup&) = delete;
    ~TaskGroup();

    /// Start `task` as a child named `name` (for logs and the watchdog) on the next loop turn.
    TaskRef spawn(Task<void> task, std::string name = {});
    /// Cancel the body and every child.
    void cancel() { guard_.scope().cancel(); }
    bool cancelled() const { return guard_scope().cancelled; }
    std::size_t size() const { return children_.size(); }
    Loop& loop() const { return *fiber_.loop; }

    template <class Body>
    friend Task<void> with_group(Body body);
    /// For code that is not a coroutine body (the host): a group owned by a
    /// fiber; run the loop until join() completes.
    TaskGroup(detail::Fiber& owner) : fiber_(owner), guard_(owner, false) {}
    /// Wait for every child (not interrupted by cancellation), then rethrow the first failure.
    Task<void> join();
    void fail(std::exception_ptr e);

private:
    friend class TaskRef;
    const detail::Scope& guard_scope() const { return const_cast<TaskGroup*>(this)->guard_.scope(); }
    void child_done(TaskRef::Child* c);

    detail::Fiber& fiber_;
    detail::ScopeGuard guard_;
    std::list<std::shared_ptr<TaskRef::Child>> children_;
    std::exception_ptr error_;
    Event idle_;
};

struct MOAT_API TaskRef::Child {
    Child(TaskGroup& g, Loop& loop, std::string name, detail::Scope* parent)
        : group(&g), fiber{&loop, std::move(name)}, root(fiber, parent, false) {
        fiber.current = &root;
    }
    TaskGroup* group;
    detail::Fiber fiber;
    detail::Scope root;
    Task<void> task;
    Event finished;
};

/// Run `body(group)`; returns when the body and every child it spawned ended.
/// `body` is a callable returning Task<void> taking TaskGroup&.
template <class Body>
Task<void> with_group(Body body) {
    detail::Fiber& f = co_await detail::this_fiber();
    TaskGroup group(f);
    try {
        Task<void> t = body(group);
        co_await t;
    } catch (const Cancelled&) {
        // The body was cancelled, by its own group (a child failed) or from outside.
    } catch (...) {
        group.fail(std::current_exception());
    }
    co_await group.join();
}

/// Run a root task on `loop` until it finishes (drives the loop). For main()
/// and tests. Rethrows the task's exception.
template <class T>
T run_until_complete(Loop& loop, Task<T> task, std::string name = "main");

namespace detail {
struct MOAT_API RootRun {
    Fiber fiber;
    Scope root;
    bool done = false;
    RootRun(Loop& loop, std::string name) : fiber{&loop, std::move(name)}, root(fiber, nullptr, false) {
        fiber.current = &root;
    }
};
} // namespace detail

template <class T>
T run_until_complete(Loop& loop, Task<T> task, std::string name) {
    detail::RootRun run(loop, std::move(name));
    auto h = task.handle();
    h.promise().fiber = &run.fiber;
    h.promise().on_done = [](void* arg) {
        auto* r = static_cast<detail::RootRun*>(arg);
        r->done = true;
        r->fiber.loop->stop();
    };
    h.promise().on_done_arg = &run;
    loop.post_resume(&run.fiber, h);
    while (!run.done) {
        loop.run();
        if (!run.done && !loop.alive())
            throw std::logic_error("run_until_complete: the task waits for something that can never happen");
    }
    if (h.promise().error) std::rethrow_exception(h.promise().error);
    return h.promise().take();
}

} // namespace moat
