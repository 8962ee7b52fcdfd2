// Internal: the Value and Text of BusItem entries as GetItems replies,
// ItemsChanged and PropertiesChanged carry them, for the monitor. Read
// straight from the sd-bus message (sd-bus is what sdbus-c++ 1.2.0 is built
// on; an sdbus::Variant is a message of its own per value); a message the
// fast reader refuses (a struct or fd in some value, a `t` above INT64_MAX)
// is read again the sdbus-c++ way, which skips just those entries.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "moat/value.hpp"

namespace moat::detail {

/// An entry's Value and, when it came as a string, its Text.
using BusItemEntry = std::pair<Value, std::optional<std::string>>;

/// The entries of an `a{sa{sv}}` body (GetItems, ItemsChanged) that have a
/// decodable Value (others are skipped); false when the body is something else.
bool read_items(sdbus::Message& msg, std::vector<std::pair<std::string, BusItemEntry>>& out);

/// The body of PropertiesChanged (`a{sv}`); nullopt without a decodable Value.
std::optional<BusItemEntry> read_properties(sdbus::Message& msg);

} // namespace moat::detail
