// Internal: moat::Value on the wire (sdbus-c++ variants and messages). The
// SDK's plugins see only moat/value.hpp and moat/dbus.hpp.
#pragma once

#include "moat/value.hpp"

#include <sdbus-c++/sdbus-c++.h>

#include <string>
#include <string_view>
#include <vector>

namespace moat {

/// Encodes as velib does: invalid → empty `ai`; bool → `b`; integer → `i`, or `x`
/// when outside int32; double → `d`; string → `s`; non-empty list → `av`
/// (elements encoded by these rules); empty list → empty `au`; dict → `a{sv}`.
/// Never produces a variant directly inside the variant.
MOAT_API sdbus::Variant to_variant(const Value& value);

/// Decodes as velib does: integers of any width (`y n q i u x t`) → integer; `d` →
/// double; `b` → bool; `s o g` → string; an array with no elements (any
/// element type) → invalid; other arrays → list; dicts with string-like keys
/// (`s o g`) → dict, an empty one too (dbus-python reads `a{..}` as a
/// Dictionary, not an Array); variants nested at any depth are flattened. Throws std::invalid_argument naming the signature for anything
/// else (structs, unix fds, non-string dict keys, a `t` above INT64_MAX, an
/// empty variant).
MOAT_API Value from_variant(const sdbus::Variant& variant);

/// Reads one complete value of D-Bus type `signature` (e.g. "i", "v",
/// "a{sv}") at the current read position of `msg` and decodes it like
/// from_variant(); for method arguments that arrive without a variant.
/// Throws std::invalid_argument as from_variant() does (the read position of
/// `msg` is then unspecified).
MOAT_API Value read_value(sdbus::Message& msg, std::string_view signature);
/// As read_value(), but with `structs_as_lists` a struct (also inside an
/// array or variant) is read as the List of its members: for method
/// arguments and replies, where a BusItem value never has one.
MOAT_API Value read_value(sdbus::Message& msg, std::string_view signature, bool structs_as_lists);

/// The complete types of a D-Bus signature ("sa{sv}i" → "s", "a{sv}", "i").
/// Throws std::invalid_argument for a malformed signature.
MOAT_API std::vector<std::string> split_signature(std::string_view signature);

} // namespace moat
