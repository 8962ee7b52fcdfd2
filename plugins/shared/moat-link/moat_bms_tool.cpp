// build/test/moat-bms-tool: the simulator and the probe without the host, for
// the integration and peer tests and for trying the link by hand.
//
//   moat-bms-tool sim --link PATH | --unix PATH [--cells N] [--modules M] [--plain|--guarded]
//                     [--quirks] [--byte-ring] [--float64] [--noise N] [--seed S] [--time-factor F]
//                     [--verbose]
//     serves a simulated controller on a pty behind the symlink PATH (or on
//     a Unix socket, plain msgpack); prints "pty /dev/pts/N" (or "unix PATH"
//     per connection) and "ready"; reads commands on stdin, one per line:
//       the commands of sim_commands.hpp (mute 0|1, dead 0|1, invalid N, ...),
//       eof (close the pty; a new one behind the same symlink), quit
//     and answers each with "ok" (or "error ...").
//   moat-bms-tool probe (the options of `moat-victron moat-bms probe`)
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fmt/format.h>
#include <unistd.h>

#include <moat/log.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "port.hpp"
#include "probe.hpp"
#include "sim_device.hpp"
#include "sim_commands.hpp"
#include "sim_pty.hpp"

using namespace moat;
using namespace moat::bms;

namespace {

struct SimArgs {
    std::string link;
    bool unix_socket = false;  ///< serve a Unix socket (plain msgpack unless --guarded)
    bool guarded_given = false;
    sim::ControllerOptions ctl;
    sim::LinkOptions lnk;
};

void reply(const std::string& s)
{
    std::fputs((s + "\n").c_str(), stdout);
    std::fflush(stdout);
}

Task<void> serve(Loop& loop, SimArgs args)
{
    Logger log("moat-bms-sim");
    sim::SimDevice* current = nullptr;
    Event reopen, quit;
    auto commands = [&]() -> Task<void> {
        ByteStream in(loop, ::dup(0), "stdin");
        std::string line;
        std::vector<std::uint8_t> buf(512);
        for (;;) {
            const std::size_t n = co_await in.read(buf);
            if (n == 0) break;
            for (std::size_t i = 0; i < n; ++i) {
                if (buf[i] != '\n') {
                    line.push_back(char(buf[i]));
                    continue;
                }
                if (line == "quit") {
                    quit.set();
                    co_return;
                }
                std::string r = "error not running";
                try {
                    if (current) r = sim::apply_command(*current, line);
                    if (r == "reopen") {
                        reopen.set();
                        r = "ok";
                    }
                } catch (const std::exception& e) {
                    r = std::string("error ") + e.what();
                }
                reply(r);
                line.clear();
            }
        }
        quit.set();
    };
    auto devices = [&]() -> Task<void> {
        sim::PtyServer server{args.link, args.ctl, args.lnk, [&](sim::SimDevice* d, const std::string& path) {
                                  current = d;
                                  if (d) reply((args.unix_socket ? "unix " : "pty ") + path);
                              }};
        if (args.unix_socket) {
            auto t = sim::serve_unix(loop, server, reopen, log);
            co_await t;
        } else {
            auto t = sim::serve_pty(loop, server, reopen, log);
            co_await t;
        }
    };
    auto all = [&](TaskGroup& g) -> Task<void> {
        g.spawn(commands(), "commands");
        g.spawn(devices(), "devices");
        reply("ready");
        co_await quit.wait();
        g.cancel();
    };
    co_await with_group(all);
}

int sim_main(const std::vector<std::string>& argv)
{
    SimArgs s;
    ArgReader a(argv);
    while (a.next()) {
        if (a.is("--link")) s.link = a.value();
        else if (a.is("--unix")) {
            s.link = a.value();
            s.unix_socket = true;
        }
        else if (a.is("--cells")) s.ctl.cells = s.ctl.modules = std::stoi(a.value());
        else if (a.is("--modules")) s.ctl.modules = std::stoi(a.value());
        else if (a.flag("--plain")) s.lnk.guarded = false;
        else if (a.flag("--guarded")) s.lnk.guarded = true, s.guarded_given = true;
        else if (a.flag("--quirks")) s.ctl.quirks_2022 = true;
        else if (a.flag("--byte-ring")) s.ctl.byte_ring = true;
        else if (a.flag("--float64")) s.lnk.float32 = false;
        else if (a.is("--noise")) s.lnk.noise_every = std::stoi(a.value());
        else if (a.is("--seed")) s.ctl.seed = std::uint32_t(std::stoul(a.value()));
        else if (a.is("--time-factor")) s.ctl.time_factor = std::stod(a.value());
        else if (a.flag("--verbose")) stderr_sink()->level = LogLevel::debug;  // every request on stderr
        else throw UsageError(a.unknown());
    }
    if (s.link.empty()) throw UsageError("sim needs --link PATH or --unix PATH");
    if (s.unix_socket && !s.guarded_given) s.lnk.guarded = false;
    Loop loop;
    run_until_complete(loop, serve(loop, s));
    return 0;
}

int probe_main(const std::vector<std::string>& argv)
{
    Loop loop;
    std::string out, err;
    auto log = Logger("probe");
    const int rc = run_until_complete(loop, run_probe(loop, log, parse_probe(argv), out, err));
    std::fputs(out.c_str(), stdout);
    std::fputs(err.c_str(), stderr);
    return rc;
}

} // namespace

int main(int argc, char** argv)
{
    std::vector<std::string> args(argv + 1, argv + argc);
    try {
        if (!args.empty() && args[0] == "sim") return sim_main({args.begin() + 1, args.end()});
        if (!args.empty() && args[0] == "probe") return probe_main({args.begin() + 1, args.end()});
        throw UsageError("usage: moat-bms-tool sim --link PATH [...] | probe --device PATH|--socket PATH [--json]");
    } catch (const UsageError& e) {
        std::fprintf(stderr, "moat-bms-tool: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "moat-bms-tool: %s\n", e.what());
        return 1;
    }
}
