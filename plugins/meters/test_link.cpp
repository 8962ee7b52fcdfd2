// The Modbus links on a real loop against the simulator: TCP on loopback,
// RTU on a pseudo-terminal; replies, exception replies, garbled replies,
// silence, the FIFO of one transaction at a time, cancellation, reconnects.
#include "link.hpp"
#include "registers.hpp"
#include "simulator.hpp"

#include <catch2/catch.hpp>

#include <moat/loop.hpp>
#include <moat/task.hpp>

using namespace std::chrono_literals;
using namespace moat;
using namespace moat::meters;
using modbus::Request;

namespace {

Logger quiet() { return Logger("test", null_sink()); }

double f32_at(const std::vector<std::uint16_t>& w, std::size_t i)
{
    Register r;
    r.encoding = Encoding::f32b;
    r.words = 2;
    return decode(r, std::span(w).subspan(i, 2)).as_double();
}

struct Rig {
    Loop loop;
    sim::SimBus bus;
    sim::SimMeter& meter = bus.add(MeterKind::sdm630v2, 1);
    std::unique_ptr<sim::TcpServer> tcp;
    std::unique_ptr<sim::RtuServer> rtu;
    std::unique_ptr<Link> link;

    explicit Rig(bool use_rtu)
    {
        if (use_rtu) {
            rtu = std::make_unique<sim::RtuServer>(loop, bus);
            link = std::make_unique<RtuLink>(loop, RtuOptions{.device = rtu->slave_path(), .baud = 115200}, quiet());
        } else {
            tcp = std::make_unique<sim::TcpServer>(loop, bus);
            link = std::make_unique<TcpLink>(loop, "127.0.0.1", tcp->port(), quiet());
        }
    }
    template <class T>
    T run(Task<T> t)
    {
        return run_until_complete(loop, std::move(t));
    }
};

Task<modbus::Response> read(Link& link, std::uint8_t unit, Request r, Duration timeout = 500ms)
{
    co_return co_await link.transact(unit, r, timeout);
}

} // namespace

TEST_CASE("links read the simulated SDM630 registers over TCP and RTU")
{
    const bool use_rtu = GENERATE(false, true);
    INFO((use_rtu ? "RTU" : "TCP"));
    Rig rig(use_rtu);
    auto r = rig.run(read(*rig.link, 1, Request::read_input(0x0000, 6)));
    REQUIRE_FALSE(r.is_exception());
    REQUIRE(r.registers.size() == 6);
    CHECK(f32_at(r.registers, 0) == Approx(230.5));
    CHECK(f32_at(r.registers, 2) == Approx(231.5));
    CHECK(f32_at(r.registers, 4) == Approx(232.5));
    auto code = rig.run(read(*rig.link, 1, Request::read_holding(0xFC02, 1)));
    CHECK(code.registers == std::vector<std::uint16_t>{0x0070});
    // A register the meter does not have: an exception reply, reported as such.
    auto ex = rig.run(read(*rig.link, 1, Request::read_input(0x2000, 2)));
    REQUIRE(ex.is_exception());
    CHECK(*ex.exception == 2);
    CHECK(modbus::exception_name(*ex.exception) == "ILLEGAL DATA ADDRESS");
    // Writes are echoed and checked.
    auto w = rig.run(read(*rig.link, 1, Request::write_single(0x0014, 0x4000)));
    CHECK_FALSE(w.is_exception());
    CHECK(rig.meter.holding[0x0014] == 0x4000);
}

TEST_CASE("links: an injected exception, a garbled reply, silence and an absent unit")
{
    const bool use_rtu = GENERATE(false, true);
    INFO((use_rtu ? "RTU" : "TCP"));
    Rig rig(use_rtu);

    rig.meter.fault = {sim::Fault::Kind::exception, 4, std::nullopt};
    auto ex = rig.run(read(*rig.link, 1, Request::read_input(0, 2)));
    REQUIRE(ex.is_exception());
    CHECK(modbus::exception_name(*ex.exception) == "SERVER DEVICE FAILURE");

    rig.meter.fault = {sim::Fault::Kind::crc, 0, std::nullopt};
    CHECK_THROWS_AS(rig.run(read(*rig.link, 1, Request::read_input(0, 2))), modbus::ProtocolError);
    try {
        rig.run(read(*rig.link, 1, Request::read_input(0, 2)));
    } catch (const modbus::ProtocolError& e) {
        CHECK(e.fault() == (use_rtu ? modbus::Fault::bad_crc : modbus::Fault::bad_length));
    }

    rig.meter.fault = {sim::Fault::Kind::silent, 0, std::nullopt};
    const auto t0 = std::chrono::steady_clock::now();
    CHECK_THROWS_AS(rig.run(read(*rig.link, 1, Request::read_input(0, 2), 100ms)), TimeoutError);
    CHECK(std::chrono::steady_clock::now() - t0 < 1s);

    rig.meter.fault = {};
    CHECK_THROWS_AS(rig.run(read(*rig.link, 7, Request::read_input(0, 2), 100ms)), TimeoutError);
    // Recovered: the link is still good.
    CHECK_FALSE(rig.run(read(*rig.link, 1, Request::read_input(0, 2))).is_exception());
}

TEST_CASE("links: a fault limited to one address spares the other requests")
{
    Rig rig(true);
    rig.meter.fault = {sim::Fault::Kind::crc, 0, 0x015A};
    CHECK_FALSE(rig.run(read(*rig.link, 1, Request::read_input(0, 2))).is_exception());
    CHECK_THROWS_AS(rig.run(read(*rig.link, 1, Request::read_input(0x015A, 6))), modbus::ProtocolError);
}

namespace {
// Coroutines as functions, not capturing lambdas: a spawned lambda coroutine
// refers to its closure, which would die before it.
Task<void> read_in_order(Link& link, int i, std::vector<int>& order)
{
    auto r = co_await link.transact(1, Request::read_input(std::uint16_t(2 * i), 2), 500ms);
    CHECK(f32_at(r.registers, 0) == Approx(std::vector<double>{230.5, 231.5, 232.5, 1.25, 2.5}[std::size_t(i)]));
    order.push_back(i);
}

Task<void> hang(Link& link, bool& cancelled)
{
    try {
        co_await link.transact(1, Request::read_input(0, 2), 30s);
    } catch (const Cancelled&) {
        cancelled = true;
        throw;
    }
}
} // namespace

TEST_CASE("links: one transaction at a time, in the order asked")
{
    const bool use_rtu = GENERATE(false, true);
    Rig rig(use_rtu);
    std::vector<int> order;
    auto body = [&](TaskGroup& g) -> Task<void> {
        for (int i = 0; i < 5; ++i) g.spawn(read_in_order(*rig.link, i, order));
        co_return;
    };
    rig.run(with_group(body));
    CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
    CHECK(rig.link->queued() == 0);
}

TEST_CASE("links: cancelling a transaction waiting for a dead meter ends it at once, the queue moves on")
{
    const bool use_rtu = GENERATE(false, true);
    Rig rig(use_rtu);
    rig.meter.fault = {sim::Fault::Kind::silent, 0, std::nullopt};
    bool first_cancelled = false, second_cancelled = false;
    auto body = [&](TaskGroup& g) -> Task<void> {
        auto first = g.spawn(hang(*rig.link, first_cancelled));
        auto second = g.spawn(hang(*rig.link, second_cancelled));
        co_await sleep_for(50ms);
        CHECK(rig.link->queued() == 1);
        const auto t0 = std::chrono::steady_clock::now();
        first.cancel();
        second.cancel();
        co_await first.join();
        co_await second.join();
        CHECK(std::chrono::steady_clock::now() - t0 < 200ms);
    };
    rig.run(with_group(body));
    CHECK(first_cancelled);
    CHECK(second_cancelled);
    CHECK(rig.link->queued() == 0);
    // A transaction after the cancellations works (RTU: after waiting for line silence).
    rig.meter.fault = {};
    CHECK_FALSE(rig.run(read(*rig.link, 1, Request::read_input(0, 2))).is_exception());
}

TEST_CASE("TCP link: connection refused, and a reconnect after the peer dropped the connection")
{
    Loop loop;
    sim::SimBus bus;
    bus.add(MeterKind::em24rtu, 1, "BX12345");
    sim::TcpServer server(loop, bus);
    const auto port = server.port();
    {
        // Nothing listens on the port just below (most likely): refused or timed out, never a hang.
        TcpLink dead(loop, "127.0.0.1", 1, quiet());
        CHECK_THROWS(run_until_complete(loop, read(dead, 1, Request::read_holding(0x000B, 1), 200ms)));
        TcpLink bad(loop, "not-an-ip", 502, quiet());
        CHECK_THROWS_AS(run_until_complete(loop, read(bad, 1, Request::read_holding(0x000B, 1))), LinkError);
    }
    TcpLink link(loop, "127.0.0.1", port, quiet());
    auto r = run_until_complete(loop, read(link, 1, Request::read_holding(0x000B, 1)));
    CHECK(r.registers == std::vector<std::uint16_t>{70});
    CHECK(link.connected());
    server.drop_clients();
    // The next transaction notices the loss (LinkError) or finds the link closed and reconnects.
    for (int attempt = 0; attempt < 3; ++attempt) {
        try {
            r = run_until_complete(loop, read(link, 1, Request::read_holding(0x000B, 1)));
            break;
        } catch (const LinkError&) {
        }
    }
    CHECK(r.registers == std::vector<std::uint16_t>{70});
    CHECK(server.accepted() == 2);
}

TEST_CASE("RTU link: a port that does not exist is reported by name")
{
    Loop loop;
    CHECK_THROWS_WITH(RtuLink(loop, RtuOptions{.device = "/dev/moat-no-such-tty"}, quiet()),
                      Catch::Contains("/dev/moat-no-such-tty"));
    CHECK_THROWS_WITH(RtuLink(loop, RtuOptions{.device = "/dev/null", .baud = 12345}, quiet()),
                      Catch::Contains("12345"));
}

TEST_CASE("RTU link: the other end of the line going away makes the link lost, never a busy loop")
{
    Loop loop;
    sim::SimBus bus;
    bus.add(MeterKind::sdm630v2, 1);
    auto server = std::make_unique<sim::RtuServer>(loop, bus);
    RtuLink link(loop, RtuOptions{.device = server->slave_path(), .baud = 115200}, quiet());
    CHECK_FALSE(run_until_complete(loop, read(link, 1, Request::read_input(0, 2))).is_exception());
    server.reset();  // the master side closes: the tty hangs up
    CHECK_THROWS(run_until_complete(loop, read(link, 1, Request::read_input(0, 2), 100ms)));
    CHECK(link.lost());
    CHECK_THROWS_AS(run_until_complete(loop, read(link, 1, Request::read_input(0, 2), 100ms)), LinkError);
}
