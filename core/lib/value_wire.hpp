// Internal: moat::Value straight into and out of sd-bus messages, for the
// hot paths (replies to GetItems/GetValue/GetText, change signals, the
// monitor's reading of them). sd-bus is the library sdbus-c++ 1.2.0 is built
// on; an sdbus::Variant is a message of its own per value, which is what
// made these paths cost as much as Python's. Same rules as value_dbus.hpp.
#pragma once

#include <systemd/sd-bus.h>

#include <string>

#include "moat/value.hpp"

namespace moat::wire {

/// Appends `value` as a variant (`v`) by to_variant()'s rules. Returns the
/// sd-bus result (negative errno on failure).
int append_variant(sd_bus_message* m, const Value& value);

/// Reads the variant (`v`) at the read position of `m` by from_variant()'s
/// rules (nested variants flattened, empty arrays invalid, empty dicts
/// dicts). Throws std::invalid_argument for what from_variant() refuses;
/// the read position is then unspecified.
Value read_variant(sd_bus_message* m);

/// sd-bus's error code as an exception, naming `what`.
[[noreturn]] void fail(int r, const char* what);

/// Throws via fail() when `r` is negative; returns it otherwise.
inline int check(int r, const char* what) {
    if (r < 0) fail(r, what);
    return r;
}

} // namespace moat::wire
