// `moat-victron guard`: every critical setting read from the bus and judged
// by the command itself (the same checks as the plugin), so it works whether
// or not the guard plugin runs.
#pragma once

#include <moat/command.hpp>

namespace moat::guard {

extern const ClientCommand guard_command;

} // namespace moat::guard
