// The link end to end in one process: the session against the simulated
// controller over a socketpair (and a pty), in virtual time: session order,
// ring reads, resync, decode-error and timeout session ends, link false,
// back-off timings, the packet queue bound, an exclusive port.
#include "link_session.hpp"
#include "port.hpp"
#include "probe.hpp"
#include "ring_reader.hpp"
#include "sim_device.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

using namespace moat;
using namespace moat::bms;
using namespace std::chrono_literals;
using MValue = msgpack::Value;

namespace {

struct LinkRig : test::VirtualLoop {
    explicit LinkRig(sim::ControllerOptions copt = {}, sim::LinkOptions lopt = {}, SessionOptions so = {})
    {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        host_fd = fds[0];
        device = std::make_unique<sim::SimDevice>(loop, std::make_unique<ByteStream>(loop, fds[1], "sim"), copt, lopt,
                                                  Logger("sim", null_sink()));
        link = std::make_unique<Link>(loop, so, Logger("bms", null_sink()));
        link->opener = [this](Loop& l) -> std::unique_ptr<ByteStream> {
            ++opens;
            open_times.push_back(elapsed());
            if (fail_opens > 0) {
                --fail_opens;
                throw IoError("sim: not there yet");
            }
            if (host_fd < 0) throw IoError("sim: gone");
            return std::make_unique<ByteStream>(l, std::exchange(host_fd, -1), "sim");
        };
    }
    ~LinkRig() { if (host_fd >= 0) ::close(host_fd); }
    int host_fd = -1;
    int opens = 0;
    int fail_opens = 0;  ///< the first this many opens fail
    std::vector<double> open_times;
    std::unique_ptr<sim::SimDevice> device;
    std::unique_ptr<Link> link;

    /// Run the simulator and `script` side by side until the script returns.
    template <class Script>
    void with_device(Duration total, Script script)
    {
        run(total, [&]() -> Task<void> {
            auto body = [&](TaskGroup& g) -> Task<void> {
                g.spawn(device->run(), "sim");
                co_await script();
                g.cancel();
            };
            co_await with_group(body);
        });
    }
    sim::SimController& ctl() { return device->controller(); }
};

struct RealLoop {
    Loop loop;
    template <class Make>
    void run(Duration total, Make make)
    {
        auto bounded = [&]() -> Task<void> {
            auto t = with_timeout(total, make());
            co_await t;
        };
        run_until_complete(loop, bounded());
    }
};


} // namespace

TEST_CASE("a session comes up in order and reads the simulated ring")
{
    sim::LinkOptions lo;
    lo.noise_every = 2;  // console lines between messages
    LinkRig r({}, lo);
    std::optional<RingSnapshot> snap;
    Logger log("test", null_sink());
    r.with_device(60s, [&]() -> Task<void> {
        auto on_up = [&](LinkSession& s) -> Task<void> {
            CHECK(std::chrono::duration<double>(s.keepalive).count() == Approx(15.0 / 2.1).margin(1e-3));
            auto t = read_ring(s, 16, log);
            snap = co_await t;
        };
        auto once = r.link->run_once(on_up);
        co_await once;
    });
    REQUIRE(snap);
    CHECK(snap->hops == 16);
    REQUIRE(snap->cells.size() == 16);
    CHECK(*snap->cells[0].volts == Approx(3.297).margin(0.01));
    CHECK(*snap->cells[5].cell_celsius == Approx(25.0).margin(0.2));
    CHECK(snap->warnings.empty());
    const auto& req = r.ctl().requests();
    REQUIRE(req.size() >= 3);
    CHECK(req[0] == "sys.cfg");
    CHECK(req[1] == "sys.test");
    CHECK(req[2] == "sys.is_up");
    CHECK(r.link->state().console_lines > 0);
    CHECK(r.link->state().sessions == 1);
}

TEST_CASE("plain msgpack (a socket): the same session without guard bytes")
{
    sim::LinkOptions lo;
    lo.guarded = false;
    lo.float32 = false;
    SessionOptions so;
    so.guarded = false;
    LinkRig r({}, lo, so);
    int hops = 0;
    r.with_device(60s, [&]() -> Task<void> {
        auto on_up = [&](LinkSession& s) -> Task<void> {
            auto t = ring_size(s);
            hops = co_await t;
        };
        auto once = r.link->run_once(on_up);
        co_await once;
    });
    CHECK(hops == 16);
    CHECK(r.link->state().console_lines == 0);
    CHECK(r.device->decode_errors() == 0);
}

TEST_CASE("ring read: the module's sample count is used and a mismatch warned, B from the config, invalid raws counted")
{
    LinkRig r;
    auto& mods = r.ctl().ring().modules();
    mods[1].settings.num_samples = 10;   // the configuration says 5
    mods[2].settings.b_internal = 3435;  // the configuration says 3950
    mods[3].voltage_raw_override = 0x2000 | 3000;
    mods[4].temp_raw_override = 1023;
    std::optional<RingSnapshot> snap;
    Logger log("test", null_sink());
    r.with_device(60s, [&]() -> Task<void> {
        auto on_up = [&](LinkSession& s) -> Task<void> {
            auto t = read_ring(s, 16, log);
            snap = co_await t;
        };
        auto once = r.link->run_once(on_up);
        co_await once;
    });
    REQUIRE(snap);
    REQUIRE(snap->cells.size() == 16);
    // Module 1 sums 10 readings of 746: its own count gives the same voltage as the others.
    CHECK(snap->cells[1].voltage.raw() == 7460);
    REQUIRE(snap->cells[1].volts);
    CHECK(*snap->cells[1].volts == Approx(*snap->cells[0].volts).margin(1e-9));
    CHECK(snap->cells[2].load_celsius == snap->cells[0].load_celsius);  // converted with the configured B
    CHECK_FALSE(snap->cells[3].volts);
    CHECK(snap->cells[3].voltage_reading == cell::Reading::invalid);
    CHECK_FALSE(snap->cells[4].load_celsius);
    CHECK_FALSE(snap->cells[4].cell_celsius);
    std::string all;
    for (auto& w : snap->warnings) all += w + "\n";
    CHECK(all.find("cell 1: the module averages 10 samples, cell.u.samples says 5") != std::string::npos);
    CHECK(all.find("cell 2: the module reports B 3435/3950, the configuration 3950/3950") != std::string::npos);
    CHECK(all.find("cell 3: invalid voltage raw 0x2BB8") != std::string::npos);
    CHECK(all.find("cell 4: invalid load thermistor raw 1023") != std::string::npos);
}

TEST_CASE("a device configuration without poll.k is a config error naming the key")
{
    auto cfg = sim::default_device_config(4);
    cfg.find("batt")->find("poll");  // present ...
    auto* batt = cfg.map();
    for (auto& [k, v] : *batt)
        if (k == "batt")
            for (auto& [k2, v2] : *v.map())
                if (k2 == "poll") std::erase_if(*v2.map(), [](auto& e) { return e.first == "k"; });
    sim::ControllerOptions co;
    co.device_config = cfg;
    LinkRig r(co);
    std::string error;
    r.with_device(30s, [&]() -> Task<void> {
        try {
            auto once = r.link->run_once([](LinkSession&) -> Task<void> { co_return; });
            co_await once;
        } catch (const DeviceConfigError& e) {
            error = e.what();
        }
    });
    CHECK(error.find("'batt.poll.k' is missing") != std::string::npos);
}

TEST_CASE("a device configuration with more than 32 cells is a config error")
{
    sim::ControllerOptions co;
    co.cells = 33;
    co.modules = 2;
    LinkRig r(co);
    std::string error;
    r.with_device(30s, [&]() -> Task<void> {
        try {
            auto once = r.link->run_once([](LinkSession&) -> Task<void> { co_return; });
            co_await once;
        } catch (const DeviceConfigError& e) {
            error = e.what();
        }
    });
    CHECK(error.find("'batt.batt.n' is 33 (at most 32)") != std::string::npos);
}

TEST_CASE("invalid msgpack resyncs, five decode errors within 10 s end the session")
{
    LinkRig r;
    std::string ended;
    int pings = 0;
    r.with_device(60s, [&]() -> Task<void> {
        auto on_up = [&](LinkSession& s) -> Task<void> {
            // Four errors: each resyncs on the next guard and the reply arrives.
            r.device->faults.invalid_msgpack = 4;
            for (int k = 0; k < 4; ++k) {
                auto p = s.client.ping(MValue("a"));
                const std::string got = co_await p;
                CHECK(got == "R:a");
                ++pings;
            }
            CHECK(r.link->state().decode_errors == 4);
            co_await sleep_for(11s);  // the four fall out of the window
            r.device->faults.invalid_msgpack = 5;
            for (;;) {
                auto p = s.client.ping(MValue("b"));
                co_await p;
                co_await sleep_for(100ms);
            }
        };
        try {
            auto once = r.link->run_once(on_up);
            co_await once;
        } catch (const LinkError& e) {
            ended = e.what();
        }
    });
    CHECK(pings == 4);
    CHECK(ended.find("5 decode errors within 10 s") != std::string::npos);
    CHECK(r.link->state().decode_errors == 9);
}

TEST_CASE("a silent device: the keepalive times out and ends the session")
{
    LinkRig r;
    std::string ended;
    double at = 0;
    r.with_device(60s, [&]() -> Task<void> {
        auto on_up = [&](LinkSession&) -> Task<void> {
            r.device->faults.mute = true;
            for (;;) co_await sleep_for(1h);
        };
        try {
            auto once = r.link->run_once(on_up);
            co_await once;
        } catch (const LinkError& e) {
            ended = e.what();
            at = r.elapsed();
        }
    });
    CHECK(ended.find("batt.live") != std::string::npos);
    // The first live goes out after 15/2.1 s and may take 2 s.
    CHECK(at == Approx(15.0 / 2.1 + 2.0).margin(0.5));
}

TEST_CASE("link false ends the session, the reconnect loop backs off 1, 1.4, 1.96 s")
{
    LinkRig r;
    std::vector<LinkState> states;
    r.link->on_state = [&](const LinkState& s) { states.push_back(s); };
    r.with_device(60s, [&]() -> Task<void> {
        auto on_up = [&](LinkSession& s) -> Task<void> {
            auto b = s.client.reboot(false);
            co_await b;
            for (;;) co_await sleep_for(1h);
        };
        try {
            auto t = with_timeout(10s, r.link->run(on_up));
            co_await t;
        } catch (const TimeoutError&) {
        }
    });
    REQUIRE(states.size() >= 4);
    CHECK(states[0].up);
    CHECK_FALSE(states[1].up);
    CHECK(states[1].reason == "the device sent link false");
    // Later opens fail at once (the simulated port is gone): the delays grow.
    REQUIRE(r.open_times.size() >= 4);
    CHECK(r.open_times[2] - r.open_times[1] == Approx(1.4).margin(0.05));
    CHECK(r.open_times[3] - r.open_times[2] == Approx(1.96).margin(0.05));
}

TEST_CASE("a session that stayed up 60 s starts the back-off over")
{
    LinkRig r;
    r.fail_opens = 2;  // 1 s, then 1.4 s before the third open
    r.with_device(200s, [&]() -> Task<void> {
        auto on_up = [&](LinkSession& s) -> Task<void> {
            co_await sleep_for(61s);
            auto b = s.client.reboot(false);
            co_await b;
            for (;;) co_await sleep_for(1h);
        };
        try {
            auto t = with_timeout(80s, r.link->run(on_up));
            co_await t;
        } catch (const TimeoutError&) {
        }
    });
    REQUIRE(r.open_times.size() >= 5);
    CHECK(r.open_times[1] - r.open_times[0] == Approx(1.0).margin(0.05));
    CHECK(r.open_times[2] - r.open_times[1] == Approx(1.4).margin(0.05));
    // Up at about 2.4 s, link false after 61 s; then 1 s (not 1.96 s), 1.4 s, ...
    CHECK(r.open_times[3] - r.open_times[2] == Approx(61.0 + 0.1 + 1.0).margin(0.5));
    CHECK(r.open_times[4] - r.open_times[3] == Approx(1.4).margin(0.05));
}

TEST_CASE("an in_pkt flood is bounded: the oldest packets are dropped and counted")
{
    LinkRig r;
    std::uint64_t dropped = 0;
    r.with_device(30s, [&]() -> Task<void> {
        auto on_up = [&](LinkSession& s) -> Task<void> {
            r.ctl().flood_in_pkt(300);
            co_await sleep_for(500ms);
            dropped = s.client.counters().pkts_dropped;
            CHECK(s.client.counters().pkts == 300);
            CHECK(s.cells.counters().strays + dropped == 300);
            auto p = s.client.ping(MValue(1));
            const std::string got = co_await p;
            CHECK(got == "R:1");  // the link survived
        };
        auto once = r.link->run_once(on_up);
        co_await once;
    });
    CHECK(dropped > 0);
}

TEST_CASE("a tty is opened exclusively: the second opener gets port busy")
{
    Pty pty = open_pty();
    const int first = open_tty(pty.slave_path);
    CHECK_THROWS_WITH(open_tty(pty.slave_path), "port busy: " + pty.slave_path);
    ::close(first);
    const int again = open_tty(pty.slave_path);
    CHECK(again >= 0);
    ::close(again);
    ::close(pty.keep_slave);
    ::close(pty.master);
}

TEST_CASE("the session works over a pty with the real guarded framing")
{
    // Real time: a pty hands bytes over in a kernel worker, not at once.
    RealLoop v;
    Pty pty = open_pty();
    sim::SimDevice device(v.loop, std::make_unique<ByteStream>(v.loop, pty.master, "pty"), {}, {}, Logger("sim", null_sink()));
    SessionOptions so;
    so.device = pty.slave_path;
    Link link(v.loop, so, Logger("bms", null_sink()));
    int hops = 0;
    v.run(60s, [&]() -> Task<void> {
        auto body = [&](TaskGroup& g) -> Task<void> {
            g.spawn(device.run(), "sim");
            auto on_up = [&](LinkSession& s) -> Task<void> {
                auto t = ring_size(s);
                hops = co_await t;
            };
            auto once = link.run_once(on_up);
            co_await once;
            g.cancel();
        };
        co_await with_group(body);
    });
    CHECK(hops == 16);
    ::close(pty.keep_slave);
}

namespace {

/// Probe a simulated controller of `modules` modules on a pty (real time).
int probe_sim(int modules, std::vector<std::string> extra, std::string& out, std::string& err, bool hold_port = false)
{
    RealLoop v;
    Pty pty = open_pty();
    sim::ControllerOptions co;
    co.modules = modules;
    sim::SimDevice device(v.loop, std::make_unique<ByteStream>(v.loop, pty.master, "pty"), co, {}, Logger("sim", null_sink()));
    const int held = hold_port ? open_tty(pty.slave_path) : -1;
    std::vector<std::string> args{"--device", pty.slave_path};
    args.insert(args.end(), extra.begin(), extra.end());
    int rc = -1;
    v.run(60s, [&]() -> Task<void> {
        auto body = [&](TaskGroup& g) -> Task<void> {
            g.spawn(device.run(), "sim");
            auto p = run_probe(v.loop, Logger("probe", null_sink()), parse_probe(args), out, err);
            rc = co_await p;
            g.cancel();
        };
        co_await with_group(body);
    });
    if (held >= 0) ::close(held);
    ::close(pty.keep_slave);
    return rc;
}

} // namespace

TEST_CASE("probe prints the configuration, the ring and every cell")
{
    std::string out, err;
    CHECK(probe_sim(16, {}, out, err) == 0);
    CHECK(out.find("ring: 16 modules (hops); configured cells: 16") != std::string::npos);
    CHECK(out.find("  15   3.2973  3730") != std::string::npos);
    CHECK(err.empty());
}

TEST_CASE("probe --json: one object with config, hops and cells")
{
    std::string out, err;
    CHECK(probe_sim(4, {"--json"}, out, err) == 0);
    auto parsed = out.substr(0, 12);
    CHECK(parsed == "{\"config\":{\"");
    CHECK(out.find("\"hops\":4,\"cells\":[{\"index\":0,\"voltage\":3.2973") != std::string::npos);
    CHECK(out.find("\"index\":3") != std::string::npos);
    CHECK(out.find("\"index\":4") == std::string::npos);  // batt.n is 16, the ring has 4: the ring wins, with a warning
    CHECK(out.find("\"warnings\":[\"the ring has 4 modules, the configuration 16 cells\"]}") != std::string::npos);
}

TEST_CASE("probe fails clearly: no cells, a busy port")
{
    std::string out, err;
    CHECK(probe_sim(0, {}, out, err) == command_no_data);
    CHECK(err.find("no cells answered") != std::string::npos);
    out.clear();
    err.clear();
    CHECK(probe_sim(16, {"--timeout", "5"}, out, err, true) == command_failed);
    CHECK(err.find("port busy: /dev/pts/") != std::string::npos);
}
