// The texts `moat-victron setup` writes into the system.
#include "setup_files.hpp"

#include <sstream>

#include <fmt/format.h>

#include "config_file.hpp"

namespace moat::setup {

namespace {

/// softlimit values as Victron's own services use them (systemcalc): data
/// segment and address space 100 MB, stack 1 MB; 64-bit processes map more
/// address space for the same work, so they get four times as much.
std::string softlimit() {
#if defined(__SANITIZE_ADDRESS__)
    // ASan reserves terabytes of address space: no limits in a sanitizer build.
    return "";
#else
    constexpr long long factor = sizeof(void*) == 8 ? 4 : 1;
    return fmt::format("softlimit -d {} -s 1000000 -a {} ", 100000000LL * factor, 100000000LL * factor);
#endif
}

} // namespace

std::string run_script(const Layout& l) {
    return fmt::format("#!/bin/sh\n"
                       "# Written by moat-victron setup --install (rewritten by every install).\n"
                       "echo '*** starting {} ***'\n"
                       "exec 2>&1\n"
                       "exec {}{} --config {}\n",
                       service_name, softlimit(), l.host().string(), l.config.string());
}

std::string log_run_script(const Layout& l) {
    return fmt::format("#!/bin/sh\n"
                       "# Written by moat-victron setup --install: 4 files of 25 kB, read with tai64nlocal.\n"
                       "exec 2>&1\n"
                       "exec multilog t s25000 n4 {}\n",
                       l.log_dir.string());
}

std::string rc_line(const Layout& l) {
    std::string root = l.root == l.root.root_path() ? "" : " --root " + l.root.string();
    return fmt::format("{} setup --boot{}  # starts moat-victron (removed by: moat-victron setup --uninstall)",
                       l.host().string(), root);
}

std::string with_rc_line(const std::string& text, const std::string& line, bool& added_newline) {
    added_newline = false;
    if (text.find(rc_marker) != std::string::npos) return text;
    std::string out = text.empty() ? "#!/bin/sh\n" : text;
    if (out.back() != '\n') {
        out += '\n';
        added_newline = true;
    }
    return out + line + "\n";
}

std::string without_rc_line(const std::string& text, bool remove_added_newline) {
    std::istringstream in(text);
    std::string out, line;
    bool removed = false;
    while (std::getline(in, line)) {
        if (line.find(rc_marker) != std::string::npos) {
            removed = true;
            continue;
        }
        out += line + "\n";
    }
    if (!text.empty() && text.back() != '\n' && !out.empty()) out.pop_back();  // the file's own last line
    if (removed && remove_added_newline && !out.empty() && out.back() == '\n') out.pop_back();
    return out;
}

std::vector<std::string> serial_devices(const Layout& l) {
    auto file = load_config_file(l.config.string(), std::vector<std::string>{});
    std::vector<std::string> out;
    for (auto& inst : file.instances) {
        if (!inst.enabled || !inst.table) continue;
        auto dev = (*inst.table)["device"].value<std::string>();
        if (dev && dev->starts_with("/dev/") && std::find(out.begin(), out.end(), *dev) == out.end())
            out.push_back(*dev);
    }
    return out;
}

std::string udev_rules(const Layout& l, const std::vector<std::string>& devices) {
    if (devices.empty()) return "";
    std::string out = fmt::format("# Written by moat-victron setup --boot from {}:\n"
                                  "# serial-starter leaves these ports to moat-victron.\n",
                                  l.config.string());
    for (auto& d : devices) {
        std::string name = d.substr(5);  // without "/dev/"
        // A kernel name (ttyUSB0) is matched as such; a persistent link
        // (serial/by-id/...) by the link udev made for it before this file.
        if (name.find('/') == std::string::npos)
            out += fmt::format("SUBSYSTEM==\"tty\", KERNEL==\"{}\", ENV{{VE_SERVICE}}=\"ignore\"\n", name);
        else
            out += fmt::format("SUBSYSTEM==\"tty\", SYMLINK==\"{}\", ENV{{VE_SERVICE}}=\"ignore\"\n", name);
    }
    return out;
}

} // namespace moat::setup
