// Serving the simulated controller on a pseudo-terminal behind a stable
// symlink, as the sim plugin and build/test/moat-bms-tool do: a new pty
// (and a new controller) whenever `reopen` is set, the symlink re-pointed.
// Or on a Unix socket.
#pragma once

#include <functional>
#include <string>

#include <moat/log.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "sim_device.hpp"

namespace moat::bms::sim {

struct PtyServer {
    std::string link;                 ///< the symlink the host opens
    ControllerOptions controller;
    LinkOptions options;
    /// Called with the device of each pty (nullptr when it goes away) and the pty's path.
    std::function<void(SimDevice*, const std::string&)> on_device;
};

/// Serve until cancelled; setting `reopen` closes the current pty (the host
/// sees end of file) and opens a new one behind the same symlink. The
/// symlink is removed at the end.
Task<void> serve_pty(Loop& loop, PtyServer server, Event& reopen, Logger log);

/// The same on a Unix socket at `server.link` (plain msgpack unless
/// server.options.guarded): one connection at a time, each with a fresh
/// controller; `reopen` drops the current connection.
Task<void> serve_unix(Loop& loop, PtyServer server, Event& reopen, Logger log);

} // namespace moat::bms::sim
