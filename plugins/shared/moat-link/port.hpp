// Opening the link's endpoints (plain POSIX, no loop): the controller's tty
// (raw 8N1, exclusive), a Unix socket, and, for the simulator, a pty pair.
#pragma once

#include <string>

#include "transport.hpp"

namespace moat::bms {

/// Someone else has the port open (TIOCEXCL or our lock).
using PortBusy = moat::PortBusy;

/// Open `path` raw 8N1 at 115200 Bd (ignored by USB CDC), non-blocking, and
/// exclusively: an flock() on the open file (which holds even against root)
/// and TIOCEXCL (which keeps other programs' plain opens out). Throws
/// PortBusy or IoError. The descriptor is the caller's.
int open_tty(const std::string& path);

/// Connect to a Unix stream socket without blocking. Throws IoError (also
/// when the listener's backlog is full).
int connect_unix(const std::string& path);

/// Listen on a Unix stream socket at `path` (a stale socket file is replaced). Throws IoError.
int listen_unix(const std::string& path);

/// A pseudo-terminal for the simulator: the master side, and the slave's path.
/// The slave is set raw and kept open by `keep_slave` so the master does not
/// see a hang-up between two clients.
struct Pty {
    int master = -1;
    int keep_slave = -1;
    std::string slave_path;
};
Pty open_pty();

/// Point the symlink `link` at `target`, replacing what was there atomically.
void replace_symlink(const std::string& target, const std::string& link);

} // namespace moat::bms
