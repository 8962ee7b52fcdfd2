// meters-bench: CPU per poll of a 3-phase meter and the poll rate of one bus.
//
//   meters-bench --port PORT [--host 127.0.0.1] [--unit 1] [--seconds 3] [--peer-pid PID]
//
// Probes and brings up the meter at UNIT over Modbus TCP like the plugin
// does, then polls it back to back for SECONDS with every block due (a full
// update: all registers of a 3-phase meter), and prints
//   polls N, polls/s R, client CPU µs/poll C[, peer CPU µs/poll P]
// (CPU from getrusage; the peer's from /proc/PID/stat). No D-Bus: this is
// the Modbus side of the plugin, which is what depends on the meter count.
#include "reader.hpp"

#include <moat/loop.hpp>

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <sys/resource.h>
#include <unistd.h>

using namespace moat;
using namespace moat::meters;
using namespace std::chrono;

namespace {
double self_cpu()
{
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}
double proc_cpu(int pid)
{
    if (pid <= 0) return 0;
    std::ifstream f(fmt::format("/proc/{}/stat", pid));
    std::string s((std::istreambuf_iterator<char>(f)), {});
    auto close = s.rfind(')');
    if (close == std::string::npos) return 0;
    std::istringstream in(s.substr(close + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) utime = std::stod(field);
        if (i == 15) stime = std::stod(field);
    }
    return (utime + stime) / double(sysconf(_SC_CLK_TCK));
}
} // namespace

int main(int argc, char** argv)
{
    std::string host = "127.0.0.1";
    int port = 0, unit = 1, peer = 0;
    double seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i], v = argv[i + 1];
        if (a == "--host") host = v;
        else if (a == "--port") port = std::stoi(v);
        else if (a == "--unit") unit = std::stoi(v);
        else if (a == "--seconds") seconds = std::stod(v);
        else if (a == "--peer-pid") peer = std::stoi(v);
    }
    if (!port) {
        fmt::print(stderr, "usage: meters-bench --port PORT [--host H] [--unit N] [--seconds S] [--peer-pid PID]\n");
        return 2;
    }
    Loop loop;
    TcpLink link(loop, host, std::uint16_t(port), Logger("bench", null_sink()));
    MeterReader reader(link, std::uint8_t(unit), Logger("bench"));
    auto body = [&]() -> Task<int> {
        auto id = co_await reader.probe();
        if (!id) {
            fmt::print(stderr, "no meter at unit {}\n", unit);
            co_return 1;
        }
        auto setup = co_await reader.init(*id);
        std::size_t registers = 0;
        for (const auto& b : setup.blocks) registers += b.count;
        const auto t0 = steady_clock::now();
        const double c0 = self_cpu(), p0 = proc_cpu(peer);
        std::uint64_t polls = 0, failed = 0;
        auto when = loop.clock().now();
        while (steady_clock::now() - t0 < duration<double>(seconds)) {
            when += 10s;  // every block due
            auto u = co_await reader.update(setup, when);
            ++polls;
            if (u.ok != u.attempted) ++failed;
        }
        const double wall = duration<double>(steady_clock::now() - t0).count();
        const double cpu = self_cpu() - c0, pcpu = proc_cpu(peer) - p0;
        fmt::print("{} ({} phases, {} blocks, {} registers): polls {}, failed {}, polls/s {:.0f}, client CPU {:.1f} us/poll",
                   id->type->product_name, setup.phases, setup.blocks.size(), registers, polls, failed, polls / wall,
                   1e6 * cpu / double(polls));
        if (peer) fmt::print(", peer CPU {:.1f} us/poll", 1e6 * pcpu / double(polls));
        fmt::print("\n");
        co_return 0;
    };
    return run_until_complete(loop, body());
}
