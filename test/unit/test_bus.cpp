#include <catch2/catch.hpp>

#include "bus_call.hpp"
#include "value_dbus.hpp"
#include "moat/bus.hpp"
#include "private_daemon.hpp"

using namespace moat;
using namespace std::chrono_literals;

namespace {

Task<std::vector<std::string>> list_names(Bus& bus) {
    auto reply = co_await bus_call(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                   "ListNames", 2s);
    std::vector<std::string> names;
    reply >> names;
    co_return names;
}

Logger quiet() { return Logger("test", null_sink()); }

} // namespace

TEST_CASE("an awaitable method call round-trips through a private dbus-daemon", "[bus]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    auto bus = Bus::open(loop, daemon.address(), quiet());
    auto names = run_until_complete(loop, list_names(*bus));
    CHECK(std::find(names.begin(), names.end(), bus->unique_name()) != names.end());
    CHECK(std::find(names.begin(), names.end(), "org.freedesktop.DBus") != names.end());
}

TEST_CASE("an error reply becomes a DBusError naming the call", "[bus]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    auto bus = Bus::open(loop, daemon.address(), quiet());
    auto t = [&]() -> Task<void> {
        co_await bus_call(*bus, "com.example.nobody", "/x", "com.example.I", "M", 2s);
    };
    try {
        run_until_complete(loop, t());
        FAIL("no error");
    } catch (const DBusError& e) {
        CHECK(e.name() == "org.freedesktop.DBus.Error.ServiceUnknown");
        CHECK_THAT(e.message(), Catch::Contains("com.example.nobody /x com.example.I.M"));
    }
}

TEST_CASE("a D-Bus call is cancelled with its task, and shielded cleanup still completes a round trip", "[bus][shield]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    auto bus = Bus::open(loop, daemon.address(), quiet());
    // A second connection owns a name but never answers: the call hangs until cancelled.
    auto silent = Bus::open(loop, daemon.address(), quiet());
    detail::connection(*silent).requestName("com.example.Silent");
    auto silent_obj = sdbus::createObject(detail::connection(*silent), "/silent");
    std::vector<sdbus::Result<>> held;  // replies we never send
    silent_obj->registerMethod("com.example.Silent", "Hang", "", "", [&](sdbus::MethodCall call) {
        held.emplace_back(sdbus::Result<>(std::move(call)));
    });
    silent_obj->finishRegistration();

    std::vector<std::string> log;
    std::size_t names_in_cleanup = 0;
    auto cleanup = [&]() -> Task<void> {
        auto names = co_await list_names(*bus);
        names_in_cleanup = names.size();
        log.push_back("cleanup round trip done");
    };
    auto worker = [&]() -> Task<void> {
        bool cancelled = false;
        try {
            co_await bus_call(*bus, "com.example.Silent", "/silent", "com.example.Silent", "Hang", 30s);
            log.push_back("reply?");
        } catch (const Cancelled&) {
            cancelled = true;
            log.push_back("call cancelled");
        }
        if (cancelled) {
            co_await shielded(cleanup(), loop.clock().now() + 2s);
            throw Cancelled();
        }
    };
    auto owner = [&]() -> Task<void> {
        co_await with_group([&](TaskGroup& g) -> Task<void> {
            auto r = g.spawn(worker(), "worker");
            co_await sleep_for(50ms);
            r.cancel();
        });
    };
    auto start = std::chrono::steady_clock::now();
    run_until_complete(loop, owner());
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(log == std::vector<std::string>{"call cancelled", "cleanup round trip done"});
    CHECK(names_in_cleanup >= 3);
}

TEST_CASE("a call times out with its own timeout", "[bus]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    auto bus = Bus::open(loop, daemon.address(), quiet());
    auto silent = Bus::open(loop, daemon.address(), quiet());
    detail::connection(*silent).requestName("com.example.Silent");
    auto obj = sdbus::createObject(detail::connection(*silent), "/silent");
    std::vector<sdbus::Result<>> held;
    obj->registerMethod("com.example.Silent", "Hang", "", "", [&](sdbus::MethodCall call) {
        held.emplace_back(sdbus::Result<>(std::move(call)));
    });
    obj->finishRegistration();
    auto t = [&]() -> Task<void> { co_await bus_call(*bus, "com.example.Silent", "/silent", "com.example.Silent", "Hang", 100ms); };
    CHECK_THROWS_AS(run_until_complete(loop, t()), DBusError);
}

TEST_CASE("losing the bus daemon is reported", "[bus]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    auto bus = Bus::open(loop, daemon.address(), quiet());
    std::string why;
    Event lost;
    bus->on_lost([&](const std::string& w) {
        why = w;
        lost.set();
    });
    auto t = [&]() -> Task<void> {
        co_await list_names(*bus);
        daemon.kill();
        co_await with_timeout(5s, [&]() -> Task<void> { co_await lost.wait(); }());
    };
    run_until_complete(loop, t());
    CHECK(bus->lost());
    CHECK_FALSE(why.empty());
}

TEST_CASE("an unreachable bus address is a clear error", "[bus]") {
    Loop loop;
    CHECK_THROWS_WITH(Bus::open(loop, "unix:path=/nonexistent/socket", quiet()),
                      Catch::Contains("cannot connect to the D-Bus bus at unix:path=/nonexistent/socket"));
}
