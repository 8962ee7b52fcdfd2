// What `moat-victron setup` needs from the system: the paths of the layout
// below a root directory, files written atomically, and the external commands
// (svc, svstat, mount, udevadm), each replaceable through an environment
// variable MOAT_SETUP_<NAME> so the tests can run them against a fake root.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace moat::setup {

namespace fs = std::filesystem;

inline constexpr const char* service_name = "moat-victron";

/// The layout on the device, below `root` ("/" on a GX).
struct Layout {
    explicit Layout(const fs::path& root);
    fs::path root;
    fs::path home;          ///< /data/moat-victron
    fs::path versions;      ///< /data/moat-victron/versions/<version>/{bin,lib,share,...}
    fs::path current;       ///< /data/moat-victron/current -> versions/<version>
    fs::path previous;      ///< /data/moat-victron/previous -> the version before (for --rollback)
    fs::path config;        ///< /data/moat-victron/moat-victron.toml (the host's default)
    fs::path service;       ///< /data/moat-victron/service/moat-victron/{run,log/run,down}
    fs::path service_link;  ///< /service/moat-victron (RAM, rebuilt at every boot)
    fs::path log_dir;       ///< /var/log/moat-victron (multilog)
    fs::path rc_local;      ///< /data/rc.local
    fs::path rc_disabled;   ///< /data/rc.local.disabled (Venus's modification checks)
    fs::path udev_rule;     ///< /etc/udev/rules.d/99-moat-victron.rules (rootfs)
    fs::path state;         ///< /data/moat-victron/setup.state: what setup created besides its own tree
    fs::path host() const { return current / "bin" / service_name; }
};

struct Ran {
    int status = -1;  ///< exit code; 128+N for signal N; 127 when it could not be started
    std::string output;
};

/// Runs argv[0] (looked up in PATH) with stdout and stderr captured.
Ran run(const std::vector<std::string>& argv);

/// The program to run for an external command: $MOAT_SETUP_<NAME> or `name`.
std::string tool(const std::string& name);

std::string read_text(const fs::path& p);
/// Writes via a temporary file and rename(), then sets `mode`.
void write_text(const fs::path& p, const std::string& text, fs::perms mode = fs::perms(0644));
/// Points `link` at `target` atomically (a new link renamed over the old one).
void replace_symlink(const fs::path& target, const fs::path& link);

/// Whether the filesystem holding `p` is mounted read-only
/// (MOAT_SETUP_ROOTFS_RO=1 says yes, for the tests).
bool read_only(const fs::path& p);

} // namespace moat::setup
