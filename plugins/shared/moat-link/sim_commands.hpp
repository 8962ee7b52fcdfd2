// The simulator's run-time faults and overrides as one-line commands
// ("mute 1", "drop_nth 3", "voltage 2 3.6", ...), shared by moat-bms-tool's
// stdin and any other driver (a test, the sim plugin).
#pragma once

#include <string>

#include "sim_device.hpp"

namespace moat::bms::sim {

/// Apply one command to `device`. Returns "ok", or "error ..." for an
/// unknown command or a bad argument. "eof" and "reset 2" are not handled
/// here (the server owns the connection): they return "reopen".
std::string apply_command(SimDevice& device, const std::string& line);

/// The commands, for --help texts.
extern const char* const command_help;

} // namespace moat::bms::sim
