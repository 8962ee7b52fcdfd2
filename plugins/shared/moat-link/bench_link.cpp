// build/test/bench/moat-bms-bench: what the link costs, as ratios to a bare
// transport round trip on this machine (never asserted in tests).
//
//   poll      host CPU per 16-cell voltage poll: encode the ser.send request,
//             decode the guarded in_pkt notification, cut and check the
//             records, classify and convert 16 voltages
//   info      host CPU per info reply (decode and type-check)
//   transport a socketpair round trip of the same bytes (write + read twice)
//   stream    decoder throughput on a noisy guarded stream (MB/s)
//   plain     the same objects without guard and noise: own decoder vs
//             Debian's msgpack-c when libmsgpack-dev is installed
//   sim       simulator CPU per simulated second (16 cells, poll.t 250 ms)
#include <chrono>
#include <cstdio>
#include <ctime>
#include <sys/socket.h>
#include <unistd.h>

#include <moat/log.hpp>
#include <moat/loop.hpp>

#include "cell_packet.hpp"
#include "conversions.hpp"
#include "device_client.hpp"
#include "frame_stream.hpp"
#include "rpc.hpp"
#include "sim_controller.hpp"

using namespace moat;
using namespace moat::bms;
using msgpack::Array;
using msgpack::Map;
using msgpack::Value;

#ifdef MOAT_BMS_BENCH_MSGPACK_C
double msgpack_c_decode_mbps(const std::vector<unsigned char>& plain, std::size_t& objects);
#endif

namespace {

double cpu_now()
{
    timespec ts{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

template <class F>
double per_op(int n, F f)
{
    const double t0 = cpu_now();
    for (int i = 0; i < n; ++i) f(i);
    return (cpu_now() - t0) / n;
}

volatile double sink = 0;

} // namespace

int main()
{
    // A 16-cell voltage reply as the controller sends it.
    cell::Bytes payload{0x00, 0x11, 0x10, 0x7B};
    for (int c = 0; c < 16; ++c) {
        auto rec = cell::encode(cell::VoltageStatus{std::uint16_t(3700 + c), 0});
        payload.insert(payload.end(), rec.begin(), rec.end());
    }
    const auto notif = FrameStream::frame(Value(Map{{"d", payload}, {"a", Array{"ser", "in_pkt"}}}), true, {.float32 = true});
    const auto info = FrameStream::frame(Value(Map{{"d", Map{{"u", 53.5}, {"i", -1.25}, {"w", Map{{"s", 100.0}, {"n", 7}}},
                                                            {"r", Map{{"s", 1}, {"f", nullptr}, {"l", true}}}, {"gen", 6}}},
                                                  {"i", 12}}),
                                         true, {.float32 = true});
    const cell::VoltScale scale{0.002, 2.21, 0, 5};

    const double poll = per_op(200000, [&](int i) {
        Value req(Map{{"a", Array{"ser", "send"}}, {"d", Map{{"data", cell::Bytes{0x00, 0x01, 0x00, 0x7B}}}}, {"i", i & 0xFFFF}});
        auto wire = FrameStream::frame(req, true);
        FrameStream in(true);
        auto evs = in.feed(notif);
        const auto& v = std::get<StreamMessage>(evs.at(0)).value;
        auto r = std::get<cell::Reply>(cell::parse_reply(*v.find("d")->bin()));
        if (cell::check_count(r, 16)) std::abort();
        for (auto& rec : r.records) {
            auto vs = cell::decode_voltage(rec);
            if (cell::classify(vs) == cell::Reading::value) sink = sink + *cell::raw_to_volt(vs.raw(), scale);
        }
        sink = sink + double(wire.size());
    });

    const double info_cost = per_op(200000, [&](int) {
        FrameStream in(true);
        auto evs = in.feed(info);
        const auto& v = std::get<StreamMessage>(evs.at(0)).value;
        const Value& d = *v.find("d");
        sink = sink + *d.find("u")->number() + *d.find("i")->number() + double(WorkSums::from_info(*d.find("w")).ticks);
    });

    int sp[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sp) != 0) return 1;
    std::vector<std::uint8_t> buf(4096);
    const cell::Bytes request(36, 0x55);
    const double transport = per_op(50000, [&](int) {
        if (::write(sp[0], request.data(), request.size()) < 0 || ::read(sp[1], buf.data(), buf.size()) < 0) std::abort();
        if (::write(sp[1], notif.data(), notif.size()) < 0 || ::read(sp[0], buf.data(), buf.size()) < 0) std::abort();
    });
    ::close(sp[0]);
    ::close(sp[1]);

    // A noisy stream: console lines between info replies and packets.
    msgpack::Bytes stream;
    const std::string noise = "RELAY 1 Check OK\r\nUL 41.2\r\n";
    while (stream.size() < (8u << 20)) {
        stream.insert(stream.end(), noise.begin(), noise.end());
        stream.insert(stream.end(), info.begin(), info.end());
        stream.insert(stream.end(), notif.begin(), notif.end());
    }
    std::size_t messages = 0;
    const double t0 = cpu_now();
    FrameStream fs(true);
    for (std::size_t at = 0; at < stream.size(); at += 4096) {
        auto evs = fs.feed(std::span(stream).subspan(at, std::min<std::size_t>(4096, stream.size() - at)));
        for (auto& e : evs) messages += std::holds_alternative<StreamMessage>(e);
    }
    const double mbps = double(stream.size()) / (cpu_now() - t0) / 1e6;

    // The same objects back to back without guard or noise: our decoder vs msgpack-c.
    std::vector<unsigned char> plain;
    while (plain.size() < (8u << 20)) {
        plain.insert(plain.end(), info.begin() + 1, info.end());
        plain.insert(plain.end(), notif.begin() + 1, notif.end());
    }
    std::size_t own_objects = 0;
    const double p0 = cpu_now();
    for (std::span<const std::uint8_t> rest(plain); !rest.empty(); ++own_objects) {
        auto r = msgpack::decode(rest);
        if (r.status != msgpack::DecodeStatus::ok) break;
        rest = rest.subspan(r.used);
    }
    const double own_mbps = double(plain.size()) / (cpu_now() - p0) / 1e6;

    Loop loop;
    VirtualClock clock(loop);
    loop.set_clock(clock);
    std::size_t emitted = 0;
    sim::SimController ctl(clock, {}, [&](Value) { ++emitted; }, Logger("bench", null_sink()));
    ctl.start();
    const double s0 = cpu_now();
    for (int s = 0; s < 3600; ++s) {
        clock.advance(std::chrono::seconds(1));
        loop.run_ready();
    }
    const double sim_per_s = (cpu_now() - s0) / 3600;

    std::printf("poll      %8.2f us per 16-cell voltage poll (host side)\n", poll * 1e6);
    std::printf("info      %8.2f us per info reply\n", info_cost * 1e6);
    std::printf("transport %8.2f us per socketpair round trip of the same bytes\n", transport * 1e6);
    std::printf("ratio     poll/transport %.2f, info/transport %.2f\n", poll / transport, info_cost / transport);
    std::printf("stream    %8.1f MB/s decoded (own codec, %zu messages in %.1f MB with console noise)\n", mbps, messages,
                double(stream.size()) / 1e6);
    std::printf("plain     %8.1f MB/s own decoder (%zu objects, no guard, no noise)\n", own_mbps, own_objects);
#ifdef MOAT_BMS_BENCH_MSGPACK_C
    std::size_t c_objects = 0;
    const double c_mbps = msgpack_c_decode_mbps(plain, c_objects);
    std::printf("msgpack-c %8.1f MB/s (%zu objects); own/msgpack-c %.2f\n", c_mbps, c_objects, own_mbps / c_mbps);
#else
    std::printf("msgpack-c (not installed: libmsgpack-dev gives the comparison)\n");
#endif
    std::printf("sim       %8.2f us CPU per simulated second (16 cells, 4 checks/s; %zu notifications)\n", sim_per_s * 1e6, emitted);
    return sink > 0 ? 0 : 1;
}
