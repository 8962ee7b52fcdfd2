// `moat-victron status`: the status line on a terminal, composed by the
// client itself from the same code as the plugin (gather.hpp, line.hpp), so
// it works whether or not the plugin runs.
#pragma once

#include <moat/command.hpp>

namespace moat::statusline {

extern const ClientCommand status_command;

} // namespace moat::statusline
