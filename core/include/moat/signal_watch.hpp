// A POSIX signal delivered on the loop (uv_signal_t), for the host and for
// standalone programs built on the SDK. Plugins never handle signals.
#pragma once

#include "moat/export.hpp"

#include <functional>

#include "moat/loop.hpp"

namespace moat {

/// Calls `fn(signum)` on the loop when `signum` arrives; closed when destroyed.
/// It does not keep the loop alive by itself.
class MOAT_API SignalWatch {
public:
    SignalWatch(Loop& loop, int signum, std::function<void(int)> fn);
    ~SignalWatch();
    SignalWatch(const SignalWatch&) = delete;
    SignalWatch& operator=(const SignalWatch&) = delete;

private:
    struct Handle;
    Handle* h_;
};

} // namespace moat
