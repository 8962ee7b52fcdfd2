// MeterReader over a real link against the simulator: every meter type is
// probed, brought up and read, and the values match what the registers hold;
// a block that fails comes back invalid; a configured type that finds
// another meter is reported, not used.
#include "reader.hpp"
#include "simulator.hpp"

#include <catch2/catch.hpp>

using namespace std::chrono_literals;
using namespace moat;
using namespace moat::meters;

namespace {
Logger quiet() { return Logger("test", null_sink()); }
}

TEST_CASE("reader: probe, bring-up and a full read of every meter type over TCP and RTU")
{
    const auto kind = GENERATE(MeterKind::abb_b2x, MeterKind::em24rtu, MeterKind::sdm120, MeterKind::sdm630v1,
                               MeterKind::sdm630v2, MeterKind::sdm72dv2);
    const bool use_rtu = GENERATE(false, true);
    INFO(std::string(sim::kind_name(kind)) + (use_rtu ? " RTU" : " TCP"));
    Loop loop;
    sim::SimBus bus;
    auto& meter = bus.add(kind, 3, kind == MeterKind::em24rtu ? "BX777" : "4242");
    std::unique_ptr<sim::TcpServer> tcp;
    std::unique_ptr<sim::RtuServer> rtu;
    std::unique_ptr<Link> link;
    if (use_rtu) {
        rtu = std::make_unique<sim::RtuServer>(loop, bus);
        link = std::make_unique<RtuLink>(loop, RtuOptions{.device = rtu->slave_path(), .baud = 115200}, quiet());
    } else {
        tcp = std::make_unique<sim::TcpServer>(loop, bus);
        link = std::make_unique<TcpLink>(loop, "127.0.0.1", tcp->port(), quiet());
    }
    MeterReader reader(*link, 3, quiet(), {}, 200ms);
    auto body = [&]() -> Task<void> {
        auto id = co_await reader.probe();
        REQUIRE(id);
        CHECK(id->type->kind == kind);
        auto setup = co_await reader.init(*id);
        CHECK(setup.phases == meter.phases());
        CHECK(setup.identity.ident == (kind == MeterKind::em24rtu ? "cg_BX777" : "cg_4242"));
        auto u = co_await reader.update(setup, loop.clock().now());
        CHECK(u.ok == u.attempted);
        CHECK(u.attempted == setup.blocks.size());
        for (const auto& [path, v] : meter.values()) {
            INFO(path);
            REQUIRE(u.values.contains(path));
            REQUIRE(u.values[path].as_number());
            CHECK(*u.values[path].as_number() == Approx(v).margin(1e-6));
        }
        CHECK(u.values.size() == meter.values().size());
        // Nothing is due again right away; everything after 4 s.
        auto again = co_await reader.update(setup, loop.clock().now());
        CHECK(again.attempted == 0);
        auto later = co_await reader.update(setup, loop.clock().now() + 4s);
        CHECK(later.attempted == setup.blocks.size());
        // An exception reply: that block's values invalid, the others read.
        meter.fault = {sim::Fault::Kind::exception, 4, setup.blocks.front().address};
        auto bad = co_await reader.update(setup, loop.clock().now() + 8s);
        CHECK(bad.ok == bad.attempted - 1);
        for (const auto& reg : setup.blocks.front().registers) CHECK(bad.values[reg.path].is_invalid());
        meter.fault = {};
        // A configured type must be the one found.
        const auto other = kind == MeterKind::em24rtu ? MeterKind::sdm630v2 : MeterKind::em24rtu;
        CHECK_FALSE(co_await reader.probe(other));
        CHECK(co_await reader.probe(kind));
    };
    run_until_complete(loop, body());
}

TEST_CASE("reader: nothing at the unit gives no identification, in bounded time")
{
    Loop loop;
    sim::SimBus bus;
    bus.add(MeterKind::sdm630v2, 1);
    sim::TcpServer server(loop, bus);
    TcpLink link(loop, "127.0.0.1", server.port(), quiet());
    MeterReader reader(link, 9, quiet(), {}, 50ms);
    const auto t0 = std::chrono::steady_clock::now();
    auto body = [&]() -> Task<void> { CHECK_FALSE(co_await reader.probe()); };
    run_until_complete(loop, body());
    CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}
