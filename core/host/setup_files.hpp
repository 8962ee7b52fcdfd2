// The files `moat-victron setup` writes: the daemontools service scripts, the
// line in /data/rc.local, the udev rule that keeps serial-starter off our ports.
#pragma once

#include <string>
#include <vector>

#include "setup_system.hpp"

namespace moat::setup {

/// `run`: the host under softlimit, stderr into the log.
std::string run_script(const Layout& l);
/// `log/run`: multilog into /var/log/moat-victron.
std::string log_run_script(const Layout& l);

/// What identifies our line in rc.local.
inline constexpr const char* rc_marker = "moat-victron setup --boot";
/// The line rc.local runs at every boot.
std::string rc_line(const Layout& l);

/// rc.local's text with our line (unchanged when it is there already);
/// `added_newline` tells whether a missing final newline had to be added.
std::string with_rc_line(const std::string& text, const std::string& line, bool& added_newline);
/// rc.local's text without our line (and without the newline we added).
std::string without_rc_line(const std::string& text, bool remove_added_newline);

/// The serial devices (`device = "/dev/..."`) of the enabled plugin instances
/// in the configuration; throws ConfigError when it does not load.
std::vector<std::string> serial_devices(const Layout& l);
/// The udev rule setting VE_SERVICE=ignore for `devices` ("" for none).
std::string udev_rules(const Layout& l, const std::vector<std::string>& devices);

} // namespace moat::setup
