// `moat-victron setup`: installs, boots, checks, upgrades, rolls back and
// removes the moat-victron service on a GX device (Venus OS), everything
// below a root directory (`/` on the device, a temporary tree in the tests).
#pragma once

#include <functional>
#include <span>
#include <string>

namespace moat {

struct SetupHooks {
    /// Whether a plugin along the installed host's plugin path brings the
    /// client command `name` (`patches` is run at boot only when one does).
    std::function<bool(const std::string& name)> has_command;
};

/// Runs `moat-victron setup ARGS...`; returns the process exit code.
int setup_main(std::span<char* const> args, const SetupHooks& hooks);

} // namespace moat
