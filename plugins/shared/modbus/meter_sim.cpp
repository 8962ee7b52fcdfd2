// meter-sim: simulated Modbus energy meters for the demo and the tests.
//
//   meter-sim (--tcp PORT | --rtu) [--host 127.0.0.1] [--meter TYPE[:UNIT[:SERIAL]]]... [--profile constant|sine|external]
//
// Prints "tcp HOST PORT" or "rtu /dev/pts/N" (the path to open as the serial
// port), then "ready". Commands on stdin, one per line, each answered "ok"
// (or "error: ..."):
//   fault UNIT none | silent [ADDR] | crc [ADDR] | exception CODE [ADDR]
//   set UNIT PATH VALUE        pin a published value (e.g. set 1 /Ac/L1/Power 1500)
//   dump UNIT                  "PATH=VALUE" lines of what the registers hold, then "end"
//   requests UNIT              requests served so far
// SIGTERM, SIGINT or the end of stdin stop it.
#include "simulator.hpp"

#include <moat/io.hpp>
#include <moat/loop.hpp>
#include <moat/signal_watch.hpp>
#include <moat/task.hpp>

#include <fmt/format.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>
#include <unistd.h>

using namespace moat;
using namespace moat::meters;

namespace {

std::string command(sim::SimBus& bus, const std::string& line)
{
    std::istringstream in(line);
    std::string verb;
    int unit = 0;
    in >> verb >> unit;
    sim::SimMeter* m = bus.find(std::uint8_t(unit));
    if (!m) return fmt::format("error: no meter at unit {}", unit);
    auto address = [&]() -> std::optional<std::uint16_t> {
        std::string a;
        if (!(in >> a)) return std::nullopt;
        return std::uint16_t(std::stoul(a, nullptr, 0));
    };
    if (verb == "fault") {
        std::string kind;
        in >> kind;
        sim::Fault f;
        if (kind == "none") {
        } else if (kind == "silent") {
            f.kind = sim::Fault::Kind::silent;
            f.address = address();
        } else if (kind == "crc") {
            f.kind = sim::Fault::Kind::crc;
            f.address = address();
        } else if (kind == "exception") {
            int code = 4;
            in >> code;
            f.kind = sim::Fault::Kind::exception;
            f.code = std::uint8_t(code);
            f.address = address();
        } else {
            return "error: fault none|silent|crc|exception";
        }
        m->fault = f;
        return "ok";
    }
    if (verb == "set") {
        std::string path;
        double v = 0;
        if (!(in >> path >> v)) return "error: set UNIT PATH VALUE";
        m->set(path, v);
        return "ok";
    }
    if (verb == "dump") {
        std::string out;
        for (auto& [path, v] : m->values()) out += fmt::format("{}={}\n", path, v);
        return out + "end";
    }
    if (verb == "requests") return std::to_string(m->requests);
    return "error: unknown command";
}

} // namespace

int main(int argc, char** argv)
{
    std::optional<int> tcp_port;
    bool rtu = false;
    std::string host = "127.0.0.1";
    sim::Profile profile = sim::Profile::constant;
    std::vector<std::string> meters;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                fmt::print(stderr, "meter-sim: {} needs a value\n", a);
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--tcp") tcp_port = std::stoi(next());
        else if (a == "--rtu") rtu = true;
        else if (a == "--host") host = next();
        else if (a == "--meter") meters.push_back(next());
        else if (a == "--profile") {
            auto p = next();
            profile = p == "sine" ? sim::Profile::sine : p == "external" ? sim::Profile::external : sim::Profile::constant;
        } else {
            fmt::print(stderr, "usage: meter-sim (--tcp PORT | --rtu) [--host H] [--meter TYPE[:UNIT[:SERIAL]]]... "
                               "[--profile constant|sine|external]\n");
            return 2;
        }
    }
    if (tcp_port.has_value() == rtu) {
        fmt::print(stderr, "meter-sim: give --tcp PORT or --rtu\n");
        return 2;
    }
    if (meters.empty()) meters.push_back("sdm630v2:1");

    Loop loop;
    sim::SimBus bus;
    try {
        for (const auto& spec : meters) {
            std::istringstream in(spec);
            std::string type, unit = "1", serial = "12345678";
            std::getline(in, type, ':');
            std::getline(in, unit, ':');
            std::getline(in, serial, ':');
            auto kind = sim::kind_from_name(type);
            if (!kind) throw std::invalid_argument("unknown meter type " + type);
            bus.add(*kind, std::uint8_t(std::stoi(unit)), serial).set_profile(profile);
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "meter-sim: {}\n", e.what());
        return 2;
    }

    std::unique_ptr<sim::TcpServer> tcp;
    std::unique_ptr<sim::RtuServer> pty;
    try {
        if (tcp_port) {
            tcp = std::make_unique<sim::TcpServer>(loop, bus, host, std::uint16_t(*tcp_port));
            fmt::print("tcp {} {}\n", host, tcp->port());
        } else {
            pty = std::make_unique<sim::RtuServer>(loop, bus);
            fmt::print("rtu {}\n", pty->slave_path());
        }
    } catch (const std::exception& e) {
        fmt::print(stderr, "meter-sim: {}\n", e.what());
        return 1;
    }
    fmt::print("ready\n");
    std::fflush(stdout);

    Event stop;
    SignalWatch term(loop, SIGTERM, [&](int) { stop.set(); });
    SignalWatch intr(loop, SIGINT, [&](int) { stop.set(); });
    // Commands, one per line, on stdin; end of file ends the simulator.
    // (A stdin that cannot be watched, such as /dev/null, takes no commands.)
    std::string pending;
    FdWatch in;
    try {
        in = FdWatch(loop, 0, "stdin");
    } catch (const IoError&) {
    }
    if (in) in.start(FdWatch::readable, [&](unsigned, const std::string&) {
        char buf[512];
        const ssize_t n = ::read(0, buf, sizeof buf);
        if (n <= 0) {
            in.stop();
            stop.set();
            return;
        }
        pending.append(buf, std::size_t(n));
        for (auto nl = pending.find('\n'); nl != std::string::npos; nl = pending.find('\n')) {
            std::string line = pending.substr(0, nl);
            pending.erase(0, nl + 1);
            try {
                fmt::print("{}\n", command(bus, line));
            } catch (const std::exception& e) {
                fmt::print("error: {}\n", e.what());
            }
            std::fflush(stdout);
        }
    });

    auto main_task = [&]() -> Task<void> {
        const auto t0 = loop.clock().now();
        while (!stop.is_set()) {
            bus.update(std::chrono::duration<double>(loop.clock().now() - t0).count());
            auto tick = [&]() -> Task<void> { co_await stop.wait(); };
            try {
                auto t = with_timeout(std::chrono::milliseconds(100), tick());
                co_await t;
            } catch (const TimeoutError&) {
            }
        }
    };
    run_until_complete(loop, main_task());
    return 0;
}
