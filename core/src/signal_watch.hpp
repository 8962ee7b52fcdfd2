// A uv_signal_t that calls a function with the signal number; closed when destroyed.
#pragma once

#include <functional>

#include "moat/loop.hpp"

namespace moat {

class SignalWatch {
public:
    /// Does not keep the loop alive (uv_unref).
    SignalWatch(Loop& loop, int signum, std::function<void(int)> fn) : h_(new Handle{{}, std::move(fn)}) {
        uv_signal_init(loop.uv(), &h_->sig);
        h_->sig.data = h_;
        uv_signal_start(&h_->sig, [](uv_signal_t* s, int n) { static_cast<Handle*>(s->data)->fn(n); }, signum);
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
        std::function<void(int)> fn;
    };
    Handle* h_;
};

} // namespace moat
