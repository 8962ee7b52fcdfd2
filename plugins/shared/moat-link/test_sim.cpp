// The controller simulator: ring addressing and counters exactly as the
// module firmware, bypass cycles, the RPC commands, and the relay state
// machine with and without the 2022 quirks.
#include "cell_packet.hpp"
#include "config_merge.hpp"
#include "rpc.hpp"
#include "sim_commands.hpp"
#include "sim_controller.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

using namespace moat;
using namespace moat::bms;
using namespace moat::bms::cell;
using namespace moat::bms::sim;
using namespace std::chrono_literals;
using msgpack::Map;
using msgpack::Value;
using test::hex;

TEST_CASE("sim ring: a read appends one record per addressed module, hops count the ring")
{
    SimRing ring(4);
    auto out = ring.process(hex("01 01 00 0B"));  // start 1, cells 1 (two modules), seq 3
    REQUIRE(out.size() == 1);
    auto r = std::get<Reply>(parse_reply(out[0]));
    CHECK(r.header.hops == 4);
    CHECK(r.header.seen);
    CHECK(r.records.size() == 2);
    // Nobody at 7: forwarded untouched, seen clear.
    out = ring.process(hex("07 01 00 00"));
    CHECK(std::get<CellError>(parse_reply(out.at(0))).kind() == CellErrorKind::no_such_cell);
    // Unknown command 14 and ResetPacketCounters: forwarded without seen.
    CHECK_FALSE(decode_header(ring.process(hex("00 0E 00 18")).at(0))->seen);
    CHECK_FALSE(decode_header(ring.process(hex("00 00 00 18")).at(0))->seen);
}

TEST_CASE("sim ring: writes consume one record per module, a broadcast shares one")
{
    SimRing ring(3);
    Bytes req = hex("00 0B 00 10");  // WriteBalanceLevel to 0..2, seq 0
    for (int m = 0; m < 3; ++m) put_le(req, std::uint32_t(4000 + m), 2);
    auto out = ring.process(req);
    REQUIRE(out.size() == 1);
    CHECK(out[0].size() == 4);  // every record consumed
    CHECK(ring.modules()[2].level_raw == 4002);
    out = ring.process(hex("00 2B 00 F9 00 00"));  // broadcast level 0, seq 1
    CHECK(out.at(0) == hex("00 3B 03 F9 00 00"));
    for (auto& m : ring.modules()) CHECK(m.level_raw == 0);
    // A write short of records: the frame is abandoned, nothing comes back.
    CHECK(ring.process(hex("00 0B 00 12 01 00")).empty());
}

TEST_CASE("sim ring: sequence gaps count as bad packets, settings and voltages as the firmware")
{
    SimRing ring(1);
    ring.process(hex("00 01 00 00"));  // seq 0
    ring.process(hex("00 01 00 03"));  // seq 3: two lost
    auto out = ring.process(hex("00 04 00 04"));
    auto r = std::get<Reply>(parse_reply(out.at(0)));
    CHECK(decode_packet_counters(r.records.at(0)) == PacketCounters{0, 2});
    out = ring.process(hex("00 05 00 05"));
    CHECK(decode_settings(std::get<Reply>(parse_reply(out.at(0))).records.at(0)).load_res_raw == 52);
    ring.modules()[0].voltage = 3.30;
    out = ring.process(hex("00 01 00 06"));
    auto v = decode_voltage(std::get<Reply>(parse_reply(out.at(0))).records.at(0));
    CHECK(v.raw() == 5 * 746);
    CHECK(ring.counters().per_command[1] == 3);
}

TEST_CASE("sim ring: a module over its bypass threshold balances, then cools down")
{
    SimRing ring(2);
    ring.modules()[0].voltage = 3.50;
    ring.modules()[1].level_raw = 3000;  // dynamic level below its 3.30 V raw
    ring.tick(1);
    CHECK_FALSE(ring.modules()[0].bypass);  // 3.50 V = 3955 < 4775 and no level
    CHECK(ring.modules()[1].bypass);
    CHECK(ring.modules()[1].voltage_word() & 0x8000);
    ring.modules()[1].level_raw = 0;  // the host clears the level: no second cycle
    for (int s = 0; s < 21; ++s) ring.tick(1);
    CHECK_FALSE(ring.modules()[1].bypass);
    CHECK(ring.modules()[1].voltage_word() & 0x8000);  // cool-down keeps bit 15
    CHECK(ring.modules()[1].balance_counter > 0);
    for (int s = 0; s < 81; ++s) ring.tick(1);
    CHECK_FALSE(ring.modules()[1].voltage_word() & 0x8000);
}

TEST_CASE("sim ring faults: dead, k-th drop, duplicate, reorder, garbage, bad raws")
{
    SimRing ring(2);
    ring.faults.dead = true;
    CHECK(ring.process(hex("00 01 00 08")).empty());
    ring.faults.dead = false;
    ring.faults.drop_nth = 2;
    CHECK(ring.process(hex("00 01 00 08")).size() == 1);
    CHECK(ring.process(hex("00 01 00 09")).empty());
    CHECK(ring.process(hex("00 01 00 0A")).size() == 1);
    ring.faults.duplicate = true;
    CHECK(ring.process(hex("00 01 00 0B")).size() == 2);
    ring.faults.duplicate = false;
    ring.faults.reorder = true;
    CHECK(ring.process(hex("00 01 00 0C")).empty());
    auto two = ring.process(hex("00 01 00 0D"));
    REQUIRE(two.size() == 2);
    CHECK(decode_header(two[0])->sequence == 5);
    CHECK(decode_header(two[1])->sequence == 4);
    ring.faults.reorder = false;
    ring.faults.append_garbage = true;
    CHECK(std::get<CellError>(parse_reply(ring.process(hex("00 01 00 0E")).at(0))).kind() == CellErrorKind::spurious_data);
    ring.faults.append_garbage = false;
    ring.modules()[1].voltage_raw_override = 0x2000 | 3000;
    auto r = std::get<Reply>(parse_reply(ring.process(hex("00 01 00 0F")).at(0)));
    CHECK(classify(decode_voltage(r.records[1])) == Reading::invalid);
}

namespace {

struct SimRig : test::VirtualLoop {
    explicit SimRig(ControllerOptions o = {}) : sim(clock, o, [this](Value v) { out.push_back(std::move(v)); }, Logger("sim", null_sink())) {}
    std::vector<Value> out;
    SimController sim;
    int id = 0;
    /// Send a request; the replies collect in `out`.
    void call(std::initializer_list<const char*> p, Value d) { sim.receive(Value(Map{{"a", path(p)}, {"d", std::move(d)}, {"i", ++id}})); }
    const Value* reply(int which)
    {
        for (auto& v : out)
            if (!v.find("a") && v.find("i")->integer() == which) return &v;
        return nullptr;
    }
    void advance(Duration d) { clock.advance(d); loop.run_ready(); }
};

} // namespace

TEST_CASE("sim commands: cfg modes and the delta echo, test, ping, errcount, unknown")
{
    SimRig r;
    r.sim.start();
    CHECK(r.out.at(0) == Value(Map{{"a", "link"}, {"d", true}}));
    r.call({"sys", "cfg"}, Value(Map{{"mode", 0}}));
    REQUIRE(r.reply(1));
    CHECK(config_at(*r.reply(1)->find("d"), "batt.poll.k")->integer() == 15000);
    r.call({"sys", "cfg"}, Value(Map{{"mode", 0}, {"cfg", Map{{"batt", Map{{"poll", Map{{"k", 10000}, {"d", "-"}}}}}}}}));
    CHECK(r.reply(2)->find("d")->is_nil());
    CHECK(config_at(r.sim.running_config(), "batt.poll.k")->integer() == 10000);
    CHECK(config_at(r.sim.running_config(), "batt.poll.d") == nullptr);
    CHECK(config_at(r.sim.stored_config(), "batt.poll.k")->integer() == 15000);  // mode 0 is RAM only
    CHECK(path_name(*r.out.back().find("a")) == "mplex.cfg");
    // A change made on the controller by someone else: the same echo, a nested delta.
    const Value delta(Map{{"batt", Map{{"cell", Map{{"balance", Map{{"n", 2}}}}}}}});
    r.sim.change_config(delta);
    CHECK(config_at(r.sim.running_config(), "batt.cell.balance.n")->integer() == 2);
    CHECK(config_at(r.sim.running_config(), "batt.cell.balance.min"));  // merged, not replaced
    CHECK(path_name(*r.out.back().find("a")) == "mplex.cfg");
    CHECK(*r.out.back().find("d")->find("cfg") == delta);
    r.call({"sys", "test"}, Value(Map{}));
    CHECK(*r.reply(3)->find("d")->bin() == hex("61 0D 62 0A 63"));
    r.sim.receive(Value(Map{{"a", "ping"}, {"d", "x"}, {"i", 50}}));
    CHECK(*r.reply(50)->find("d")->str() == "R:x");
    r.call({"ser", "errcount"}, Value(Map{}));
    CHECK(r.reply(4)->find("d")->find("crc"));
    r.call({"batt", "nope"}, Value(Map{}));
    CHECK(r.reply(5)->find("e")->str()->find("AttributeError") == 0);
}

TEST_CASE("sim relay: auto on after t1, forced off and on, release waits relay.t")
{
    SimRig r;
    r.sim.start();
    r.call({"batt", "live"}, Value(Map{}));  // live: automatic switching allowed
    r.advance(1s);
    CHECK_FALSE(r.sim.relay());
    r.advance(1500ms);
    CHECK(r.sim.relay());  // after relay.t1 = 2 s
    r.call({"batt", "rly"}, Value(Map{{"st", false}}));
    CHECK_FALSE(r.sim.relay());
    CHECK(r.sim.forced() == 0);
    r.call({"batt", "rly"}, Value(Map{}));
    CHECK(*r.reply(3)->find("d") == Value(msgpack::Array{0, false}));
    r.call({"batt", "rly"}, Value(Map{{"st", nullptr}}));
    CHECK(r.sim.forced() == -1);
    r.call({"batt", "live"}, Value(Map{}));
    r.advance(9s);
    CHECK_FALSE(r.sim.relay());
    r.advance(1500ms);
    CHECK(r.sim.relay());  // relay.t = 10 s after the release
    CHECK(r.sim.rly_calls() == 3);
}

TEST_CASE("sim relay: a lost keepalive opens the relay, unless in 2022 quirks mode")
{
    for (bool quirks : {false, true}) {
        INFO("quirks " << quirks);
        ControllerOptions o;
        o.quirks_2022 = quirks;
        SimRig r(o);
        r.sim.start();
        r.call({"batt", "live"}, Value(Map{}));
        r.advance(3s);
        REQUIRE(r.sim.relay());
        r.advance(16s);  // poll.k = 15 s without live
        CHECK(r.sim.relay() == quirks);
    }
}

TEST_CASE("sim info: a long poll waits for the next generation, quirks advance it every check")
{
    for (bool quirks : {false, true}) {
        ControllerOptions o;
        o.quirks_2022 = quirks;
        SimRig r(o);
        r.sim.start();
        r.call({"batt", "info"}, Value(Map{}));
        const auto gen = *r.reply(1)->find("d")->find("gen")->integer();
        r.call({"batt", "info"}, Value(Map{{"gen", gen}}));
        CHECK_FALSE(r.reply(2));
        r.advance(260ms);
        CHECK(bool(r.reply(2)) == quirks);  // one check: only the 2022 generation moved
        r.advance(1s);
        REQUIRE(r.reply(2));
        CHECK(r.reply(2)->find("d")->find("gen")->integer() != gen);
    }
}

TEST_CASE("sim reset: the RAM configuration is lost unless persisted, boot keeps the relay")
{
    SimRig r;
    r.sim.start();
    r.call({"sys", "cfg"}, Value(Map{{"mode", 0}, {"cfg", Map{{"batt", Map{{"poll", Map{{"k", 9000}}}}}}}}));
    r.call({"sys", "cfg"}, Value(Map{{"mode", 1}, {"cfg", Map{{"batt", Map{{"relay", Map{{"t", 5000}}}}}}}}));
    r.call({"batt", "live"}, Value(Map{}));
    r.advance(3s);
    REQUIRE(r.sim.relay());
    r.call({"sys", "boot"}, Value(Map{{"code", "SysBooT"}}));
    CHECK(*r.reply(4)->find("d") == Value(true));
    r.advance(200ms);
    CHECK(r.out.back() == Value(Map{{"a", "link"}, {"d", false}}));
    CHECK(r.sim.relay());  // a soft boot keeps the relay
    r.advance(3s);
    CHECK(r.out.back() == Value(Map{{"a", "link"}, {"d", true}}));
    CHECK(config_at(r.sim.running_config(), "batt.poll.k")->integer() == 15000);  // mode 0 was RAM only
    CHECK(config_at(r.sim.running_config(), "batt.relay.t")->integer() == 5000);  // mode 1 persisted
    r.call({"sys", "reset"}, Value(Map{{"code", "wrong"}}));
    CHECK(r.reply(5)->find("e"));
    r.call({"sys", "reset"}, Value(Map{{"code", "SysRsT"}}));
    r.advance(200ms);
    CHECK_FALSE(r.sim.relay());  // a hard reset opens it
    CHECK(r.sim.relay_history().back().why == "hard reset");
}

TEST_CASE("sim byte ring: a lost packet is a CRC error the controller counts, errcount returns and zeroes")
{
    SimRing ring(2);
    ring.byte_ring = true;
    auto ok = ring.process(hex("00 01 00 08"));
    REQUIRE(ok.size() == 1);
    CHECK(std::get<Reply>(parse_reply(ok[0])).records.size() == 2);
    ring.faults.drop_nth = 1;
    CHECK(ring.process(hex("00 01 00 09")).empty());
    CHECK(ring.take_errcount() == std::pair<std::uint32_t, std::uint32_t>{1, 0});
    CHECK(ring.take_errcount() == std::pair<std::uint32_t, std::uint32_t>{0, 0});
    CHECK(ring.process(hex("00 01 00 0A")).size() == 1);
}

TEST_CASE("sim commands switch faults and overrides, and refuse what they do not know")
{
    test::VirtualLoop v;
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    ::close(fds[0]);
    SimDevice d(v.loop, std::make_unique<ByteStream>(v.loop, fds[1], "sim"), {}, {}, Logger("sim", null_sink()));
    CHECK(apply_command(d, "mute 1") == "ok");
    CHECK(d.faults.mute);
    CHECK(apply_command(d, "drop_nth 3") == "ok");
    CHECK(d.controller().ring().faults.drop_nth == 3);
    CHECK(apply_command(d, "seen 0") == "ok");
    CHECK(d.controller().ring().faults.clear_seen);
    CHECK(apply_command(d, "voltage 2 3.6") == "ok");
    CHECK(d.controller().ring().modules()[2].voltage == 3.6);
    CHECK(apply_command(d, "vraw 15 9000") == "ok");
    CHECK(d.controller().ring().modules()[15].voltage_raw_override == 9000);
    CHECK(apply_command(d, "voltage 16 3.3") == "error no module 16");
    CHECK(apply_command(d, "modules 4") == "ok");
    CHECK(d.controller().ring().modules().size() == 4);
    CHECK(apply_command(d, "lose_work 1") == "ok");
    CHECK(d.controller().faults.lose_next_work_push);
    CHECK(apply_command(d, "u_gain 1.2") == "ok");
    CHECK(d.controller().u_gain == 1.2);
    CHECK(apply_command(d, "u_gain 0") == "error u_gain 0..10");
    CHECK(apply_command(d, "cfg batt.cell.balance.n 2") == "ok");
    CHECK(config_at(d.controller().running_config(), "batt.cell.balance.n")->integer() == 2);
    CHECK(apply_command(d, "cfg batt.cell.balance.min 3.4") == "ok");
    CHECK(config_at(d.controller().running_config(), "batt.cell.balance.min")->number() == 3.4);
    CHECK(config_at(d.controller().running_config(), "batt.cell.balance.d"));  // merged, not replaced
    CHECK(apply_command(d, "cfg batt") == "error cfg KEY NUMBER");
    CHECK(apply_command(d, "eof") == "reopen");
    CHECK(apply_command(d, "explode") == "error unknown command 'explode'");
}
