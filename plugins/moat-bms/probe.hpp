// `moat-victron moat-bms probe --device P|--socket P [--json]`: one session
// with the controller, then its configuration, the ring size and every
// module's settings, voltage and temperatures on stdout.
#pragma once

#include <moat/command.hpp>

namespace moat::bms {

extern const ClientCommand probe_command;

} // namespace moat::bms
