// The few things sd-bus can do that sdbus-c++ 1.2.0 does not expose.
//
// sdbus-c++ routes a method call only when it names an interface and its
// arguments match the registered signature exactly, and registers objects
// one path at a time; velib also answers calls without an interface field
// and SetValue with a bare value (venus-dbus.md §3.1, §3.2). A connection
// filter (sd_bus_add_filter) sees every call first: moat::Service answers
// all calls on its paths there (service_internal.hpp), through the same
// sdbus-c++ message classes where they serve and sd-bus where it is hot.
// sdbus-c++ keeps the raw sd_bus_message pointer in a protected member; this
// is the only file that reaches for it.
#pragma once

#include <sdbus-c++/sdbus-c++.h>
#include <systemd/sd-bus.h>

#include <vector>

#include "moat/value.hpp"

namespace moat::detail {

/// The sd_bus_message behind an sdbus-c++ message (borrowed).
sd_bus_message* raw_message(const sdbus::Message& msg);

/// A method call received by a filter, as an sdbus-c++ MethodCall that can
/// create and send its reply. `like` is any message of the same connection
/// (it lends sdbus-c++'s connection interface).
sdbus::MethodCall adopt_call(sd_bus_message* call, const sdbus::Message& like);

/// The full signature of a message's body ("" when it has no arguments).
std::string body_signature(const sdbus::Message& msg);

/// Every argument of `msg` from its current read position to the end, each
/// decoded as read_value() does (variants flattened). For methods that take
/// the declared types and plain ones alike: dbus-python callers without
/// introspection send a bare `s` or `i` where a method declares `v`.
/// Structs and fds (alone or inside a variant or array) are skipped and read
/// as invalid, or with `structs_as_lists` structs are read as Lists of their
/// members (fds still invalid); throws std::invalid_argument for anything
/// else read_value() cannot decode.
std::vector<Value> read_arguments(sdbus::Message& msg, bool structs_as_lists = false);

/// RAII for an sd_bus_slot.
class SlotGuard {
public:
    SlotGuard() = default;
    explicit SlotGuard(sd_bus_slot* s) : slot_(s) {}
    SlotGuard(const SlotGuard&) = delete;
    SlotGuard& operator=(const SlotGuard&) = delete;
    ~SlotGuard() { reset(); }
    void reset(sd_bus_slot* s = nullptr) {
        if (slot_) sd_bus_slot_unref(slot_);
        slot_ = s;
    }

private:
    sd_bus_slot* slot_ = nullptr;
};

} // namespace moat::detail
