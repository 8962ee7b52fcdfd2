// `moat-victron moat-bms probe --device P|--socket P [--json]`: one session
// with the controller, then its configuration, the ring size and every
// module's settings, voltage and temperatures on stdout.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <moat/command.hpp>

namespace moat::bms {

struct ProbeOptions {
    std::string device, socket;
    bool json = false;
    std::optional<bool> guarded;   ///< default: guarded for a device, plain for a socket
    Duration timeout = std::chrono::seconds(30);
};

/// The options after `probe`. Throws UsageError.
ProbeOptions parse_probe(const std::vector<std::string>& args);
/// Run the probe; the report goes to `out`, an error message to `err`; the exit code.
Task<int> run_probe(Loop& loop, Logger log, ProbeOptions o, std::string& out, std::string& err);

extern const ClientCommand probe_command;

} // namespace moat::bms
