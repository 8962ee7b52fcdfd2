// `moat-victron setup`: the service on a GX device. --install copies the
// running bundle into /data/moat-victron/versions/<version>, switches the
// `current` link, writes the daemontools service and the rc.local line, then
// does what --boot does at every boot: link the service into the RAM-backed
// /service, restore the udev rule a firmware update removed, run the patch
// hook. Everything lives below --root, so the tests use a fake GX tree.
#include "setup.hpp"

#include <algorithm>
#include <chrono>
#include <optional>
#include <thread>
#include <unistd.h>

#include <fmt/format.h>

#include "host.hpp"
#include "moat/command.hpp"
#include "moat/config.hpp"
#include "setup_files.hpp"
#include "setup_system.hpp"

namespace moat {

namespace {

using namespace setup;

const char* setup_usage = R"(Usage: moat-victron setup ACTION [--root DIR]

Installs and looks after the moat-victron service on a GX device (Venus OS).

Actions:
  --install     install the bundle this program belongs to into /data/moat-victron
                (versions/<version>, the `current` link switched in one step), keep
                or create moat-victron.toml (from the GX example), check it, write the
                daemontools service and one line in /data/rc.local, then --boot;
                an upgrade restarts the service. A configuration with errors is
                reported and the service installed down.
  --boot        what /data/rc.local runs at every boot: link the service into
                /service, restore the udev rule that keeps serial-starter off the
                configured serial devices (remounting / read-write only then), and
                run `moat-victron patches boot` when a plugin brings that command
                (its failure makes --boot exit 1; the service starts all the same)
  --status      version, service state (svstat), configuration check, last log lines;
                exit code 0 when healthy, 1 when not
  --rollback    switch back to the version installed before and restart the service
  --uninstall   stop the service, remove it from /service, the rc.local line, the udev
                rule and the programs; the configuration and the logs stay
                (--purge removes them too)

Options:
  --root DIR    the system's root directory (default /)
  --purge       with --uninstall: remove the configuration and the logs too
  --lines N     with --status: how many log lines to show (default 10)
  --help        print this help

The external commands (svc, svstat, mount, udevadm) can be replaced through the
environment: MOAT_SETUP_SVC=/path/to/svc and likewise MOAT_SETUP_SVSTAT,
MOAT_SETUP_MOUNT, MOAT_SETUP_UDEVADM; MOAT_SETUP_ROOTFS_RO=1 treats the root
file system as read-only (tests).
)";

enum class Action { none, install, boot, status, rollback, uninstall };

struct SetupArgs {
    Action action = Action::none;
    fs::path root = "/";
    bool purge = false;
    int lines = 10;
};

template <typename... A> void say(fmt::format_string<A...> f, A&&... a) {
    fmt::print("setup: {}\n", fmt::format(f, std::forward<A>(a)...));
    std::fflush(stdout);
}
template <typename... A> void warn(fmt::format_string<A...> f, A&&... a) {
    std::fflush(stdout);
    fmt::print(stderr, "setup: warning: {}\n", fmt::format(f, std::forward<A>(a)...));
}
struct SetupError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

fs::path exe_path() { return fs::read_symlink("/proc/self/exe"); }

/// What must be copied from a bundle or install prefix (never the whole prefix).
std::vector<fs::path> bundle_parts(const fs::path& src) {
    std::vector<fs::path> parts{"bin/moat-victron", "lib/moat-victron", "share/moat-victron"};
    for (auto& e : fs::directory_iterator(src / "lib"))
        if (e.path().filename().string().find(".so") != std::string::npos) parts.push_back("lib" / e.path().filename());
    // A bundle's bin/moat-victron is a launcher for libexec/moat-victron.
    for (auto name : {"libexec/moat-victron", "service", "VERSION", "MANIFEST.sha256", "install.sh"})
        if (fs::exists(src / name)) parts.push_back(name);
    return parts;
}

std::string bundle_version(const fs::path& src) {
    std::string v = MOAT_VERSION;
    if (fs::exists(src / "VERSION")) {
        v = read_text(src / "VERSION");
        while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
    }
    if (v.empty() || v.find('/') != std::string::npos || v[0] == '.')
        throw SetupError(fmt::format("{}: not a usable version '{}'", (src / "VERSION").string(), v));
    return v;
}

std::optional<fs::path> link_target(const fs::path& link) {
    if (!fs::is_symlink(link)) return std::nullopt;
    return fs::read_symlink(link);
}

/// Copies the bundle into versions/<version>, replacing an older copy of the
/// same version only once the new one is complete.
void copy_bundle(const fs::path& src, const fs::path& dest) {
    fs::path tmp = dest.parent_path() / fmt::format(".{}.new-{}", dest.filename().string(), ::getpid());
    fs::remove_all(tmp);
    for (auto& part : bundle_parts(src)) {
        fs::create_directories((tmp / part).parent_path());
        fs::copy(src / part, tmp / part, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    }
    if (!fs::exists(tmp / "VERSION")) write_text(tmp / "VERSION", dest.filename().string() + "\n");
    fs::path old = dest.parent_path() / fmt::format(".{}.old-{}", dest.filename().string(), ::getpid());
    if (fs::exists(dest)) fs::rename(dest, old);
    fs::rename(tmp, dest);
    fs::remove_all(old);
}

Ran svc(const std::vector<std::string>& args) {
    std::vector<std::string> argv{tool("svc")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run(argv);
}

/// Runs `mount -o remount,<how> ROOT` (returns false, after a warning, when that fails).
bool remount(const Layout& l, const char* how) {
    auto r = run({tool("mount"), "-o", fmt::format("remount,{}", how), l.root.string()});
    if (r.status != 0) warn("remounting {} {} failed ({}): {}", l.root.string(), how, r.status, r.output);
    return r.status == 0;
}

/// Writes (or removes, for "") the udev rule on the root file system,
/// read-write only for that moment when it is mounted read-only.
void write_udev_rule(const Layout& l, const std::string& want) {
    bool ro = read_only(l.udev_rule.parent_path());
    if (ro && !remount(l, "rw")) throw SetupError("cannot make the root file system writable for the udev rule");
    try {
        if (want.empty()) fs::remove(l.udev_rule);
        else write_text(l.udev_rule, want);
    } catch (...) {
        if (ro) remount(l, "ro");
        throw;
    }
    if (ro) remount(l, "ro");
    auto udevadm = tool("udevadm");
    auto r = run({udevadm, "control", "--reload-rules"});
    if (r.status == 0) r = run({udevadm, "trigger", "--subsystem-match=tty", "--action=add"});
    if (r.status != 0) warn("udevadm failed ({}): {}", r.status, r.output);
}

void boot_udev(const Layout& l) {
    std::vector<std::string> devices;
    try {
        devices = serial_devices(l);
    } catch (const ConfigError& e) {
        warn("the udev rule is left as it is: {}", e.what());
        return;
    }
    std::string want = udev_rules(l, devices);
    bool have = fs::exists(l.udev_rule);
    if (want.empty() && !have) return;
    if (have && read_text(l.udev_rule) == want) {
        say("udev rule {} in place", l.udev_rule.string());
        return;
    }
    write_udev_rule(l, want);
    say("{} udev rule {}", want.empty() ? "removed" : "wrote", l.udev_rule.string());
}

int boot(const Layout& l, const SetupHooks& hooks) {
    if (!fs::exists(l.host())) throw SetupError(fmt::format("{} is missing: run setup --install first", l.host().string()));
    fs::path scan = l.service_link.parent_path();
    if (!fs::is_directory(scan))
        throw SetupError(fmt::format("{} does not exist: this is not Venus OS (daemontools' scan directory)", scan.string()));
    fs::create_directories(l.log_dir);
    if (link_target(l.service_link) == l.service) {
        say("{} already linked", l.service_link.string());
    } else {
        replace_symlink(l.service, l.service_link);
        say("linked {} -> {} (svscan starts it within 5 s)", l.service_link.string(), l.service.string());
    }
    boot_udev(l);
    // The opt-in patch re-apply and critical-settings check belong to the
    // plugin that brings the `patches` command; without it there is nothing to do.
    // It needs no bus, so a failure is a real one (a broken manifest, a file
    // that cannot be written): the boot fails, though the service, linked
    // above, starts all the same.
    if (hooks.has_command && hooks.has_command("patches")) {
        auto r = run({l.host().string(), "patches", "boot", "--root", l.root.string()});
        fmt::print("{}", r.output);
        if (r.status != 0) {
            std::fflush(stdout);
            fmt::print(stderr,
                       "setup: error: '{} patches boot --root {}' failed (exit {}, its messages above): the enabled "
                       "patches may not be in place. The service is linked and starts.\n",
                       l.host().string(), l.root.string(), r.status);
            return exit_failure;
        }
    }
    return exit_ok;
}

/// Adds our line to rc.local (or to rc.local.disabled, so that it is there
/// when the user enables the hooks again).
void install_rc_line(const Layout& l, std::vector<std::string>& state) {
    fs::path file = l.rc_local;
    if (!fs::exists(l.rc_local) && fs::exists(l.rc_disabled)) {
        file = l.rc_disabled;
        warn("Venus OS's modification checks have disabled {} (it is {} now): moat-victron will not start "
             "after a reboot. Enable the custom rc scripts again on the GX (the Modification checks page of the "
             "general settings) or by hand: mv {} {}. The boot line is in {}.",
             l.rc_local.string(), l.rc_disabled.string(), l.rc_disabled.string(), l.rc_local.string(), file.string());
    }
    bool created = !fs::exists(file);
    std::string text = created ? "" : read_text(file);
    bool added_newline = false;
    std::string updated = with_rc_line(text, rc_line(l), added_newline);
    if (updated == text) {
        say("{} already starts moat-victron", file.string());
    } else {
        write_text(file, updated, created ? fs::perms(0755) : fs::status(file).permissions());
        if (created) state.push_back("created " + file.filename().string());
        if (added_newline) state.push_back("newline " + file.filename().string());
        say("{} {} with the boot line", created ? "created" : "updated", file.string());
    }
    if (file == l.rc_local && (fs::status(file).permissions() & fs::perms::owner_exec) == fs::perms::none) {
        fs::permissions(file, fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec, fs::perm_options::add);
        warn("{} was not executable (Venus OS does not run it then): made it executable", file.string());
    }
}

std::vector<std::string> read_state(const Layout& l) {
    std::vector<std::string> out;
    if (!fs::exists(l.state)) return out;
    std::string text = read_text(l.state), line;
    for (char c : text) {
        if (c == '\n') {
            if (!line.empty()) out.push_back(line);
            line.clear();
        } else line += c;
    }
    return out;
}

void write_state(const Layout& l, const std::vector<std::string>& state) {
    std::string text = "# what moat-victron setup created outside its own directory (used by --uninstall)\n";
    for (auto& s : state)
        if (!s.starts_with("#")) text += s + "\n";
    write_text(l.state, text);
}

bool has(const std::vector<std::string>& state, const std::string& entry) {
    return std::find(state.begin(), state.end(), entry) != state.end();
}

/// Versions neither current nor previous are removed (/data is small).
void prune_versions(const Layout& l) {
    auto keep = [&](const fs::path& link) { auto t = link_target(l.home / link); return t ? t->filename() : fs::path(); };
    fs::path cur = keep("current"), prev = keep("previous");
    for (auto& e : fs::directory_iterator(l.versions))
        if (e.path().filename() != cur && e.path().filename() != prev) fs::remove_all(e.path());
}

int install(const Layout& l, const SetupHooks& hooks) {
    fs::path src = exe_path().parent_path().parent_path();
    if (!fs::is_regular_file(src / "bin" / service_name) || !fs::is_directory(src / "lib" / "moat-victron" / "plugins"))
        throw SetupError(fmt::format("setup --install runs from an unpacked bundle or an installed tree "
                                     "(bin/moat-victron, lib/moat-victron/plugins); {} is neither",
                                     src.string()));
    if (!fs::is_directory(l.root / "data"))
        throw SetupError(fmt::format("{} does not exist: this is not Venus OS (the persistent /data)", (l.root / "data").string()));
    std::string version = bundle_version(src);
    fs::path dest = l.versions / version;
    fs::create_directories(l.versions);
    auto relative = fs::path("versions") / version;
    bool from_installed = fs::weakly_canonical(src).parent_path() == fs::weakly_canonical(l.versions);
    if (!from_installed) {
        copy_bundle(src, dest);
        say("installed {} into {}", version, dest.string());
    }
    auto state = read_state(l);

    if (!fs::exists(l.config)) {
        fs::path example = dest / "share" / "moat-victron" / "gx.toml";
        fs::copy_file(example, l.config);
        say("created {} from {} (edit it, then: svc -t {})", l.config.string(), example.string(),
            l.service_link.string());
    } else {
        say("keeping the configuration {}", l.config.string());
    }
    auto check = run({(dest / "bin" / service_name).string(), "--check-config", l.config.string()});
    bool config_ok = check.status == 0;

    auto old = link_target(l.current);
    bool upgrade = old && *old != relative;
    if (upgrade) replace_symlink(*old, l.previous);
    if (old != relative) replace_symlink(relative, l.current);
    prune_versions(l);
    if (upgrade) say("switched {} from {} to {}", l.current.string(), old->string(), relative.string());

    write_text(l.service / "run", run_script(l), fs::perms(0755));
    write_text(l.service / "log" / "run", log_run_script(l), fs::perms(0755));
    if (config_ok) fs::remove(l.service / "down");
    else write_text(l.service / "down", "");
    say("service directory {}{}", l.service.string(), config_ok ? "" : " (down: the configuration has errors)");
    fs::create_directories(l.log_dir);

    install_rc_line(l, state);
    write_state(l, state);
    int rc = boot(l, hooks);
    if (!config_ok) {
        if (fs::exists(l.service_link / "supervise")) svc({"-d", l.service_link.string()});
        fmt::print(stderr, "{}", check.output);
        fmt::print(stderr,
                   "setup: error: {} has errors (above): moat-victron is installed but not started. Fix the file, "
                   "then run setup --install again.\n",
                   l.config.string());
        return exit_config;
    }
    if (upgrade && fs::exists(l.service_link / "supervise")) {
        auto r = svc({"-t", l.service_link.string()});
        if (r.status == 0) say("restarted {}", l.service_link.string());
        else warn("svc -t {} failed ({}): {}", l.service_link.string(), r.status, r.output);
    }
    say("moat-victron {} installed", version);
    return rc;
}

bool service_up(const Layout& l) {
    auto r = run({tool("svstat"), l.service_link.string()});
    return r.status == 0 && r.output.find(": up") != std::string::npos;
}

/// svc -dx (the service, then its logger), then wait until it is down.
void stop_service(const Layout& l) {
    if (!fs::exists(l.service_link / "supervise")) return;
    svc({"-dx", l.service_link.string()});
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (service_up(l) && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (service_up(l)) warn("{} did not stop within 10 s", l.service_link.string());
    svc({"-dx", (l.service_link / "log").string()});
    say("stopped {}", l.service_link.string());
}

int uninstall(const Layout& l, bool purge) {
    auto state = read_state(l);
    stop_service(l);
    if (fs::is_symlink(l.service_link)) {
        fs::remove(l.service_link);
        say("removed {}", l.service_link.string());
    }
    for (auto& file : {l.rc_local, l.rc_disabled}) {
        if (!fs::exists(file)) continue;
        std::string name = file.filename().string();
        std::string text = read_text(file);
        std::string left = without_rc_line(text, has(state, "newline " + name));
        if (left == text) continue;
        if (has(state, "created " + name) && (left.empty() || left == "#!/bin/sh\n")) {
            fs::remove(file);
            say("removed {} (setup had created it)", file.string());
        } else {
            write_text(file, left, fs::status(file).permissions());
            say("removed the boot line from {}", file.string());
        }
    }
    if (fs::exists(l.udev_rule)) {
        write_udev_rule(l, "");
        say("removed {}", l.udev_rule.string());
    }
    for (auto& p : {l.current, l.previous, l.versions, l.service.parent_path(), l.state}) fs::remove_all(p);
    if (purge) {
        fs::remove_all(l.home);
        fs::remove_all(l.log_dir);
        say("removed {} and {}", l.home.string(), l.log_dir.string());
    } else {
        say("kept {} and the logs in {} (--purge removes them)", l.config.string(), l.log_dir.string());
        std::error_code ec;
        fs::remove(l.home, ec);  // only when empty
    }
    return exit_ok;
}

int status(const Layout& l, int lines) {
    bool healthy = true;
    auto target = link_target(l.current);
    if (!target || !fs::exists(l.host())) {
        fmt::print("installed: no ({} missing)\n", l.host().string());
        return 1;
    }
    std::string version = fs::exists(l.current / "VERSION") ? read_text(l.current / "VERSION") : "?\n";
    fmt::print("installed: {} ({})\n", version.substr(0, version.find('\n')), (l.home / *target).string());
    if (auto prev = link_target(l.previous)) fmt::print("previous:  {} (setup --rollback)\n", prev->filename().string());
    if (!fs::is_symlink(l.service_link)) {
        fmt::print("service:   not linked into {} (setup --boot)\n", l.service_link.parent_path().string());
        healthy = false;
    } else {
        auto r = run({tool("svstat"), l.service_link.string(), (l.service_link / "log").string()});
        fmt::print("service:   {}", r.output.empty() ? "\n" : r.output);
        healthy = healthy && service_up(l);
    }
    auto check = run({l.host().string(), "--check-config", l.config.string()});
    fmt::print("config:    {}", check.status == 0 ? check.output.substr(0, check.output.find('\n') + 1) : check.output);
    healthy = healthy && check.status == 0;
    fs::path log = l.log_dir / "current";
    if (fs::exists(log)) {
        std::string text = read_text(log);
        std::size_t pos = text.size();
        for (int n = 0; n <= lines && pos > 0; ++n) pos = text.rfind('\n', pos - 1);
        fmt::print("log ({}, last {} lines; tai64nlocal shows the times):\n{}", log.string(), lines,
                   pos == std::string::npos ? text : text.substr(pos + 1));
    }
    fmt::print("health:    {}\n", healthy ? "OK" : "NOT OK");
    return healthy ? 0 : 1;
}

int rollback(const Layout& l) {
    auto prev = link_target(l.previous);
    auto cur = link_target(l.current);
    if (!prev || !cur || !fs::exists(l.home / *prev / "bin" / service_name))
        throw SetupError(fmt::format("no previous version to roll back to ({} missing)", l.previous.string()));
    replace_symlink(*prev, l.current);
    replace_symlink(*cur, l.previous);
    say("rolled back from {} to {}", cur->filename().string(), prev->filename().string());
    if (fs::exists(l.service_link / "supervise")) {
        auto r = svc({"-t", l.service_link.string()});
        if (r.status == 0) say("restarted {}", l.service_link.string());
        else warn("svc -t failed ({}): {}", r.status, r.output);
    }
    return exit_ok;
}

SetupArgs parse(std::span<char* const> argv) {
    SetupArgs a;
    ArgReader args({argv.begin(), argv.end()});
    auto set = [&](Action act) {
        if (a.action != Action::none) throw UsageError("give one action");
        a.action = act;
    };
    while (args.next()) {
        if (args.flag("--install")) set(Action::install);
        else if (args.flag("--boot")) set(Action::boot);
        else if (args.flag("--status")) set(Action::status);
        else if (args.flag("--rollback")) set(Action::rollback);
        else if (args.flag("--uninstall")) set(Action::uninstall);
        else if (args.flag("--purge")) a.purge = true;
        else if (args.is("--root")) a.root = args.value();
        else if (args.is("--lines")) a.lines = std::stoi(args.value());
        else if (args.flag("--help") || args.flag("-h")) {
            fmt::print("{}", setup_usage);
            std::exit(exit_ok);
        } else throw UsageError(args.unknown());
    }
    if (a.action == Action::none) throw UsageError("which action? (--install, --boot, --status, --rollback, --uninstall)");
    if (a.purge && a.action != Action::uninstall) throw UsageError("--purge goes with --uninstall");
    return a;
}

} // namespace

int setup_main(std::span<char* const> argv, const SetupHooks& hooks) {
    SetupArgs a;
    try {
        a = parse(argv);
    } catch (const std::exception& e) {
        fmt::print(stderr, "moat-victron setup: {}\nTry 'moat-victron setup --help'.\n", e.what());
        return exit_usage;
    }
    try {
        Layout l(a.root);
        switch (a.action) {
        case Action::install: return install(l, hooks);
        case Action::boot: return boot(l, hooks);
        case Action::status: return status(l, a.lines);
        case Action::rollback: return rollback(l);
        case Action::uninstall: return uninstall(l, a.purge);
        case Action::none: break;
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "setup: error: {}\n", e.what());
    }
    return exit_failure;
}

} // namespace moat
