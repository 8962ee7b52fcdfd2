// Runs a client command (moat/command.hpp): common options, bus (none for a
// command with needs_bus false), monitor, signals, exit codes.
#pragma once

#include <span>
#include <string>

#include "moat/command.hpp"

namespace moat {

/// Run `command` with the arguments that followed its name; returns the exit code.
int run_client_command(const ClientCommand& command, std::span<char* const> args);

/// The help text of `command` (its usage and the common options).
std::string client_command_help(const ClientCommand& command);

} // namespace moat
