// A libuv signal watcher for the benchmark programs (the SDK has none: in the
// host, signals belong to the host, not to plugins).
#pragma once

#include <functional>

#include <moat/loop.hpp>

namespace bench {

/// Calls `fn` on the loop for every `signum`; stops watching when destroyed.
/// Does not keep the loop alive.
class SignalWatch {
public:
    SignalWatch(moat::Loop& loop, int signum, std::function<void()> fn) : h_(new Handle{{}, std::move(fn)}) {
        uv_signal_init(loop.uv(), &h_->sig);
        h_->sig.data = h_;
        uv_signal_start(&h_->sig, [](uv_signal_t* s, int) { static_cast<Handle*>(s->data)->fn(); }, signum);
        uv_unref(reinterpret_cast<uv_handle_t*>(&h_->sig));
    }
    ~SignalWatch() {
        uv_close(reinterpret_cast<uv_handle_t*>(&h_->sig), [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });
    }
    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;

private:
    struct Handle {
        uv_signal_t sig;
        std::function<void()> fn;
    };
    Handle* h_;
};

} // namespace bench
