// A msgpack value as JSON text (for `probe --json`). Binaries become hex
// strings, extension values null; non-finite floats null.
#pragma once

#include <string>

#include "msgpack.hpp"

#include <moat/value.hpp>  // json_string

namespace moat::bms {

std::string to_json(const msgpack::Value& v);
using moat::json_string;

} // namespace moat::bms
