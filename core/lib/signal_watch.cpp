#include "moat/signal_watch.hpp"
#include "uv_loop.hpp"

namespace moat {

struct SignalWatch::Handle {
    uv_signal_t sig;
    std::function<void(int)> fn;
};

SignalWatch::SignalWatch(Loop& loop, int signum, std::function<void(int)> fn) : h_(new Handle{{}, std::move(fn)}) {
    uv_signal_init(detail::uv_loop(loop), &h_->sig);
    h_->sig.data = h_;
    uv_signal_start(&h_->sig, [](uv_signal_t* s, int n) { static_cast<Handle*>(s->data)->fn(n); }, signum);
    uv_unref(reinterpret_cast<uv_handle_t*>(&h_->sig));
}

SignalWatch::~SignalWatch() {
    // libuv needs the handle's memory until its close callback.
    uv_close(reinterpret_cast<uv_handle_t*>(&h_->sig), [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });
}

} // namespace moat
