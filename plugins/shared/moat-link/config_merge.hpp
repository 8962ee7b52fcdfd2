// Merging a configuration delta into a configuration tree (msgpack maps), as
// the controller does for sys.cfg and the host for mplex.cfg deltas: maps
// merge key by key, the string "-" deletes a key, anything else replaces.
#pragma once

#include <string>

#include "msgpack.hpp"

namespace moat::bms {

/// Merge `delta` into `tree`. `replace_key`: a top-level key whose value
/// replaces instead of merging (the controller's `port`). A non-map delta
/// replaces the whole tree.
void merge_config(msgpack::Value& tree, const msgpack::Value& delta, const std::string& replace_key = "port");

/// A value at a dotted path ("batt.poll.k"); nullptr when absent.
const msgpack::Value* config_at(const msgpack::Value& tree, std::string_view dotted);

/// The delta that sets one dotted key: "batt.poll.k", 10000 → {batt: {poll: {k: 10000}}}.
msgpack::Value config_delta(std::string_view dotted, msgpack::Value value);

} // namespace moat::bms
