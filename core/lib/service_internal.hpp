// Internal: the parts of moat::Service and moat::Item that the public header
// only declares, shared by service.cpp (items, batches, writes) and
// service_dispatch.cpp (method calls, replies, introspection).
//
// A service has no sd-bus or sdbus-c++ object per path: one connection
// filter (sd_bus_add_filter) receives every method call, and calls on the
// service's paths are answered from the item map; signals and the hot
// replies are written straight into sd-bus messages (value_wire.hpp). That
// keeps the memory per path at the item itself (an sdbus-c++ object cost
// ~2.4 KiB per path) and the cost per call near plain sd-bus's. The public
// header still declares what the object per path needed (Item::object_,
// Node::object, root_, graveyard_, create_*_object(), register_extras(),
// entry_of()): those stay empty or undefined until the SDK's next ABI change
// can drop them.
#pragma once

#include "moat/service.hpp"

#include <sdbus-c++/sdbus-c++.h>
#include <systemd/sd-bus.h>

#include <deque>
#include <memory>
#include <set>
#include <string>

#include "sdbus_access.hpp"

namespace moat {

/// Per-item state the public header leaves to the implementation. Kept
/// small: it exists for every path, the write bookkeeping only once a
/// remote write or a written() wait concerns the item.
struct Item::Waiters {
    /// The item's text, rendered once per value (GetItems and GetText on
    /// `/` read it for every item); `text_fresh` false after any change.
    std::string text;
    bool text_fresh = false;
    bool removed = false;

    struct Writes {
        Event event;
        std::uint64_t count = 0;
        Value last;
        /// Reasons a remote write was refused that were logged at info already:
        /// once per item and reason, so that a client retrying every second does
        /// not flood the log.
        std::set<std::string, std::less<>> refusals_logged;
    };
    Writes& writes() {
        if (!writes_) writes_ = std::make_unique<Writes>();
        return *writes_;
    }
    bool has_writes() const { return bool(writes_); }

private:
    std::unique_ptr<Writes> writes_;
};

struct WriteStream::State {
    std::deque<Write> queue;
    Event event;
    bool closed = false;
};

struct Service::Filter {
    Service* service = nullptr;
    sd_bus* bus = nullptr;         ///< the service's connection (borrowed from `like`)
    detail::SlotGuard slot;
    sdbus::MethodCall like;        ///< a message of our connection, for adopt_call()

    /// Every message the connection receives passes here first: method calls
    /// on the service's paths are answered (returns 1), everything else
    /// goes on to sd-bus (Peer, UnknownObject for other paths, replies).
    static int on_message(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept;
};

namespace detail {
/// The entries of a path-sorted map below `node` ("/" or a node path): the
/// range [node + "/", node + "0") since '0' follows '/'.
template <class Map>
auto below(Map& items, const std::string& node) {
    if (node == "/") return std::make_pair(items.begin(), items.end());
    return std::make_pair(items.lower_bound(node + "/"), items.lower_bound(node + "0"));
}

/// Sends `m` (a signal) on `bus`; throws on failure.
void send_signal(sd_bus* bus, sd_bus_message* m);
/// Owns an sd_bus_message for the length of a scope.
struct MessageRef {
    sd_bus_message* m = nullptr;
    MessageRef() = default;
    MessageRef(const MessageRef&) = delete;
    MessageRef& operator=(const MessageRef&) = delete;
    ~MessageRef() { sd_bus_message_unref(m); }
};
} // namespace detail

} // namespace moat
