#include "moat/loop.hpp"
#include "moat/task.hpp"

#include <stdexcept>
#include <unordered_map>

namespace moat {

namespace {

/// Timers on libuv: one uv_timer_t per pending timer, closed when done.
class RealClock final : public Clock {
public:
    explicit RealClock(uv_loop_t* loop) : loop_(loop) {}
    ~RealClock() override {
        for (auto& [id, t] : timers_) close(t);
    }
    TimePoint now() const override { return std::chrono::steady_clock::now(); }

    TimerId schedule(TimePoint when, std::function<void()> fn) override {
        auto* t = new Entry{};
        t->clock = this;
        t->id = next_id_++;
        t->fn = std::move(fn);
        uv_timer_init(loop_, &t->handle);
        t->handle.data = t;
        auto delay = std::chrono::ceil<std::chrono::milliseconds>(when - now()).count();
        uv_timer_start(&t->handle, &RealClock::fire, delay > 0 ? std::uint64_t(delay) : 0, 0);
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
    };
    static void fire(uv_timer_t* h) {
        auto* t = static_cast<Entry*>(h->data);
        auto fn = std::move(t->fn);
        t->clock->cancel(t->id);
        fn();
    }
    static void close(Entry* t) {
        uv_timer_stop(&t->handle);
        // The handle's memory must live until libuv's close callback.
        uv_close(reinterpret_cast<uv_handle_t*>(&t->handle),
                 [](uv_handle_t* h) { delete static_cast<Entry*>(h->data); });
    }

    uv_loop_t* loop_;
    TimerId next_id_ = 1;
    std::unordered_map<TimerId, Entry*> timers_;
};

} // namespace

Loop::Loop() {
    if (int rc = uv_loop_init(&loop_); rc != 0) throw std::runtime_error(std::string("uv_loop_init: ") + uv_strerror(rc));
    uv_idle_init(&loop_, &idle_);
    idle_.data = this;
    real_clock_ = std::make_unique<RealClock>(&loop_);
    clock_ = real_clock_.get();
}

Loop::~Loop() {
    ready_.clear();
    real_clock_.reset();
    uv_close(reinterpret_cast<uv_handle_t*>(&idle_), nullptr);
    // Let libuv finish every close callback before the loop goes away.
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_loop_close(&loop_);
}

void Loop::use_real_clock() { clock_ = real_clock_.get(); }

void Loop::post(std::function<void()> fn) {
    if (ready_.empty()) uv_idle_start(&idle_, &Loop::on_idle);
    ready_.push_back(Item{nullptr, {}, std::move(fn)});
}

void Loop::post_resume(detail::Fiber* fiber, std::coroutine_handle<> h) {
    if (ready_.empty()) uv_idle_start(&idle_, &Loop::on_idle);
    ready_.push_back(Item{fiber, h, {}});
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
            item.handle.resume();
        } else {
            set_running("loop callback");
            item.fn();
        }
        set_running(nullptr);
    }
    if (ready_.empty()) uv_idle_stop(&idle_);
    return ran;
}

void Loop::on_idle(uv_idle_t* h) { static_cast<Loop*>(h->data)->run_ready(); }

void Loop::run() { uv_run(&loop_, UV_RUN_DEFAULT); }

void Loop::run_once_nowait() { uv_run(&loop_, UV_RUN_NOWAIT); }

VirtualClock::VirtualClock(Loop& loop, TimePoint start) : loop_(loop), now_(start) {}

Clock::TimerId VirtualClock::schedule(TimePoint when, std::function<void()> fn) {
    auto id = next_id_++;
    timers_.emplace(when, std::make_pair(id, std::move(fn)));
    return id;
}

void VirtualClock::cancel(TimerId id) {
    for (auto it = timers_.begin(); it != timers_.end(); ++it)
        if (it->second.first == id) {
            timers_.erase(it);
            return;
        }
}

void VirtualClock::advance(Duration d) {
    const TimePoint target = now_ + d;
    auto settle = [&] {
        while (loop_.run_ready()) {}
    };
    settle();
    while (!timers_.empty() && timers_.begin()->first <= target) {
        auto it = timers_.begin();
        now_ = std::max(now_, it->first);
        auto fn = std::move(it->second.second);
        timers_.erase(it);
        fn();
        settle();
    }
    now_ = target;
    settle();
}

} // namespace moat
