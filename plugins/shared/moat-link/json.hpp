// A msgpack value as JSON text (for `probe --json`). Binaries become hex
// strings, extension values null; non-finite floats null.
#pragma once

#include <string>

#include "msgpack.hpp"

namespace moat::bms {

std::string to_json(const msgpack::Value& v);
std::string json_string(std::string_view s);

} // namespace moat::bms
