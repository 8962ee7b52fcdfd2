#include "moat/loop.hpp"
#include "moat/task.hpp"
#include "uv_loop.hpp"

#include <stdexcept>
#include <unordered_map>

namespace moat {

struct Loop::Uv {
    uv_loop_t loop{};
    uv_idle_t idle{};
    static void on_idle(uv_idle_t* h) { static_cast<Loop*>(h->data)->run_ready(); }
};

uv_loop_t* detail::LoopAccess::uv(Loop& loop) { return &loop.uv_->loop; }

namespace {

/// Timers on libuv: one uv_timer_t per pending timer, closed when done.
class RealClock final : public Clock {
public:
    explicit RealClock(Loop& loop) : owner_loop_(loop), loop_(detail::uv_loop(loop)) {}
    ~RealClock() override {
        for (auto& [id, t] : timers_) close(t);
    }
    TimePoint now() const override { return std::chrono::steady_clock::now(); }

    TimerId schedule(TimePoint when, std::function<void()> fn) override {
        auto* t = new Entry{};
        t->clock = this;
        t->id = next_id_++;
        t->fn = std::move(fn);
        t->origin = owner_loop_.origin();
        t->when = when;
        uv_timer_init(loop_, &t->handle);
        t->handle.data = t;
        arm(t);
        timers_.emplace(t->id, t);
        return t->id;
    }

    void cancel(TimerId id) override {
        auto it = timers_.find(id);
        if (it == timers_.end()) return;
        close(it->second);
        timers_.erase(it);
    }

private:
    struct Entry {
        uv_timer_t handle;
        RealClock* clock;
        TimerId id;
        std::function<void()> fn;
        Loop::CallbackOrigin origin;
        TimePoint when;
    };
    /// libuv adds the delay to its cached loop time, which lags behind after
    /// a long callback: bring it up to date first, or the timer fires early.
    void arm(Entry* t) {
        uv_update_time(loop_);
        auto delay = std::chrono::ceil<std::chrono::milliseconds>(t->when - now()).count();
        uv_timer_start(&t->handle, &RealClock::fire, delay > 0 ? std::uint64_t(delay) : 0, 0);
    }
    static void fire(uv_timer_t* h) {
        auto* t = static_cast<Entry*>(h->data);
        // libuv's clock may be coarser than steady_clock: never run early.
        if (t->clock->now() < t->when) {
            t->clock->arm(t);
            return;
        }
        auto fn = std::move(t->fn);
        auto origin = std::move(t->origin);
        RealClock* clock = t->clock;
        clock->cancel(t->id);
        // Never let an exception unwind through libuv's C frames.
        clock->owner_loop_.invoke(origin, "a timer callback", fn);
    }
    static void close(Entry* t) {
        uv_timer_stop(&t->handle);
        // The handle's memory must live until libuv's close callback.
        uv_close(reinterpret_cast<uv_handle_t*>(&t->handle),
                 [](uv_handle_t* h) { delete static_cast<Entry*>(h->data); });
    }

    Loop& owner_loop_;
    uv_loop_t* loop_;
    TimerId next_id_ = 1;
    std::unordered_map<TimerId, Entry*> timers_;
};

} // namespace

Loop::Loop() : uv_(std::make_unique<Uv>()) {
    if (int rc = uv_loop_init(&uv_->loop); rc != 0) throw std::runtime_error(std::string("uv_loop_init: ") + uv_strerror(rc));
    uv_idle_init(&uv_->loop, &uv_->idle);
    uv_->idle.data = this;
    real_clock_ = std::make_unique<RealClock>(*this);
    clock_ = real_clock_.get();
}

Loop::~Loop() {
    ready_.clear();
    real_clock_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&uv_->idle), nullptr);
    // Let libuv finish every close callback before the loop goes away. A
    // stop() still pending (a failure nobody handled) makes the first run
    // return at once; it clears the stop, so the second one does the work.
    uv_run(&uv_->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&uv_->loop) == UV_EBUSY) {
        uv_run(&uv_->loop, UV_RUN_DEFAULT);
        uv_loop_close(&uv_->loop);
    }
}

void Loop::use_real_clock() { clock_ = real_clock_.get(); }

void Loop::post(std::function<void()> fn) {
    if (ready_.empty()) uv_idle_start(&uv_->idle, &Uv::on_idle);
    ready_.push_back(Item{nullptr, {}, std::move(fn), origin()});
}

const std::shared_ptr<LoopOwner>& Loop::owner() const {
    // The fiber's owner may be set while it runs (the host does, before it
    // creates a plugin): read it now, not when the fiber was resumed.
    return fiber_ ? fiber_->owner : owner_;
}

Loop::CallbackOrigin Loop::origin() const {
    const char* what = running();
    const auto& o = owner();
    return CallbackOrigin{o, o != nullptr, what ? what : "the loop"};
}

void Loop::invoke(const CallbackOrigin& origin, const char* where, const std::function<void()>& fn) {
    auto saved = std::move(owner_);
    auto* saved_fiber = std::exchange(fiber_, nullptr);
    owner_ = origin.owner.lock();
    try {
        fn();
    } catch (...) {
        auto error = std::current_exception();
        if (owner_) owner_->callback_failed(error, where);
        // (an owner that is gone: its instance ended; nobody else can answer)
        else if (unowned_failure_) unowned_failure_(error, where, origin.running);
        else if (!pending_) {
            pending_ = error;
            stop();
        }
    }
    owner_ = std::move(saved);
    fiber_ = saved_fiber;
}

void Loop::rethrow_pending() {
    if (pending_) std::rethrow_exception(std::exchange(pending_, nullptr));
}

void Loop::post_resume(detail::Fiber* fiber, std::coroutine_handle<> h) {
    if (ready_.empty()) uv_idle_start(&uv_->idle, &Uv::on_idle);
    ready_.push_back(Item{fiber, h, {}, {}});
}

bool Loop::run_ready() {
    bool ran = false;
    // Only what is queued now; what that queues runs on the next turn, so a
    // coroutine that keeps yielding cannot starve I/O.
    for (auto n = ready_.size(); n > 0 && !ready_.empty(); --n) {
        Item item = std::move(ready_.front());
        ready_.pop_front();
        ran = true;
        if (item.handle) {
            set_running(item.fiber ? item.fiber->name.c_str() : "task");
            auto* saved = std::exchange(fiber_, item.fiber);
            item.handle.resume();  // a coroutine keeps its exceptions in its promise
            fiber_ = saved;
        } else {
            set_running("loop callback");
            invoke(item.origin, "a posted function", item.fn);
        }
        set_running(nullptr);
    }
    if (ready_.empty()) uv_idle_stop(&uv_->idle);
    return ran;
}

void Loop::stop() { uv_stop(&uv_->loop); }

bool Loop::alive() const { return uv_loop_alive(&uv_->loop) != 0; }

void Loop::run() {
    uv_run(&uv_->loop, UV_RUN_DEFAULT);
    rethrow_pending();
}

void Loop::run_once_nowait() {
    uv_run(&uv_->loop, UV_RUN_NOWAIT);
    rethrow_pending();
}

VirtualClock::VirtualClock(Loop& loop, TimePoint start) : loop_(loop), now_(start) {}

Clock::TimerId VirtualClock::schedule(TimePoint when, std::function<void()> fn) {
    auto id = next_id_++;
    timers_.emplace(when, Entry{id, std::move(fn), loop_.origin()});
    return id;
}

void VirtualClock::cancel(TimerId id) {
    for (auto it = timers_.begin(); it != timers_.end(); ++it)
        if (it->second.id == id) {
            timers_.erase(it);
            return;
        }
}

void VirtualClock::advance(Duration d) {
    const TimePoint target = now_ + d;
    auto settle = [&] {
        while (loop_.run_ready()) {}
        loop_.rethrow_pending();
    };
    settle();
    while (!timers_.empty() && timers_.begin()->first <= target) {
        auto it = timers_.begin();
        now_ = std::max(now_, it->first);
        auto fn = std::move(it->second.fn);
        auto it_origin = std::move(it->second.origin);
        timers_.erase(it);
        loop_.invoke(it_origin, "a timer callback", fn);
        settle();
    }
    now_ = target;
    settle();
}

} // namespace moat
