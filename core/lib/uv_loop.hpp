// Internal: the libuv loop under a moat::Loop, for the library's own handles
// (clock, bus, fd watches, TCP, signals) and the host's watchdog. Not part of
// the SDK: plugins use moat/io.hpp.
#pragma once

#include "moat/loop.hpp"

#include <uv.h>

namespace moat::detail {

struct MOAT_API LoopAccess {
    static uv_loop_t* uv(Loop& loop);
};

inline uv_loop_t* uv_loop(Loop& loop) { return LoopAccess::uv(loop); }

} // namespace moat::detail
