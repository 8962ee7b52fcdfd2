// The monitor against a private dbus-daemon and independent publishers
// (test/fixtures/venus_publisher.py, Python's dbus module).
#include <catch2/catch.hpp>

#include "recording_owner.hpp"

#include "bus_call.hpp"
#include "value_dbus.hpp"
#include "moat/monitor.hpp"
#include "moat/service.hpp"
#include "private_daemon.hpp"
#include "publisher.hpp"

#include <limits>

using namespace moat;
using namespace moat::test;
using namespace std::chrono_literals;

namespace {

Logger quiet() { return Logger("test", null_sink()); }

struct Fixture {
    PrivateDaemon daemon{MOAT_TEST_DIR "/fixtures/dbus-test.conf"};
    Loop loop;
    std::unique_ptr<Bus> bus = Bus::open(loop, daemon.address(), quiet());
    Monitor mon{*bus, quiet()};
};

const std::string battery = "com.victronenergy.battery";

std::string service_json(const std::string& name, const std::string& items, const std::string& extra = "") {
    return R"({"name": ")" + name + R"(", "items": {)" + items + "}" + (extra.empty() ? "" : ", " + extra) + "}";
}
std::string config(std::initializer_list<std::string> services) {
    std::string out = R"({"services": [)";
    bool first = true;
    for (auto& s : services) {
        out += (first ? "" : ", ") + s;
        first = false;
    }
    return out + "]}";
}

const std::string battery_items = R"("/DeviceInstance": 1, "/Dc/0/Voltage": 12.5, "/Soc": null, "/ProductName": "Bat", "/Flag": true)";

/// Run `body` (a lambda returning Task<void>) to completion, with a safety timeout.
template <class Body>
void run(Loop& loop, Body& body, Duration limit = 20s) {
    auto task = with_timeout(limit, body());
    run_until_complete(loop, std::move(task));
}

std::size_t daemon_match_rules(Fixture& f) {
    auto body = [&]() -> Task<std::size_t> {
        BusCall c = new_call(*f.bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                    "org.freedesktop.DBus.Debug.Stats", "GetConnectionStats");
        c.msg << f.bus->unique_name();
        auto reply = co_await BusCallAwaitable(std::move(c), 5s);
        std::map<std::string, sdbus::Variant> stats;
        reply >> stats;
        co_return std::size_t(stats.at("MatchRules").get<std::uint32_t>());
    };
    auto t = body();
    return run_until_complete(f.loop, std::move(t));
}

} // namespace

TEST_CASE("monitor: pattern rules", "[monitor]") {
    CHECK(pattern_matches("com.victronenergy.battery", "com.victronenergy.battery"));
    CHECK(pattern_matches("com.victronenergy.battery", "com.victronenergy.battery.ttyO1"));
    CHECK_FALSE(pattern_matches("com.victronenergy.battery", "com.victronenergy.batteryx.ttyO1"));
    CHECK(pattern_matches("com.victronenergy.", "com.victronenergy.grid.cg_1"));
    CHECK_FALSE(pattern_matches("com.victronenergy.battery.a", "com.victronenergy.battery"));
    CHECK(service_class("com.victronenergy.battery.socketcan_can0_di0_uc1") == "com.victronenergy.battery");
    CHECK(service_class("com.victronenergy.system") == "com.victronenergy.system");
}

TEST_CASE("monitor: nothing happens until it is used - patterns outside com.victronenergy are refused", "[monitor]") {
    Fixture f;
    CHECK_FALSE(f.mon.started());
    CHECK(f.mon.match_rules() == 0);
    CHECK(daemon_match_rules(f) == 0);
    CHECK_THROWS_AS(f.mon.watch("org.example.thing"), std::invalid_argument);
    CHECK_FALSE(f.mon.started());
}

TEST_CASE("monitor: discovers services present before and appearing after the start, read with GetItems", "[monitor]") {
    Fixture f;
    Publisher a(f.daemon.address(), config({service_json(battery + ".a", battery_items)}));
    std::vector<ServiceInfo> added;
    auto body = [&]() -> Task<void> {
        auto sub = f.mon.on_service_added(battery, [&](const ServiceInfo& s) { added.push_back(s); });
        auto wait_a = f.mon.wait_for_service(battery + ".a", 5s);
        auto s = co_await wait_a;
        REQUIRE(s);
        CHECK(s->name == battery + ".a");
        CHECK(s->device_instance == 1);
        CHECK(s->owner.starts_with(":"));
        Value v = f.mon.value(battery + ".a", "/Dc/0/Voltage");
        CHECK(v.is_double());
        CHECK(v == Value(12.5));
        CHECK(f.mon.text(battery + ".a", "/Dc/0/Voltage") == "12.5");
        CHECK(f.mon.value(battery + ".a", "/ProductName") == Value("Bat"));
        CHECK(f.mon.value(battery + ".a", "/Flag").is_bool());
        CHECK(f.mon.value(battery + ".a", "/Soc").is_invalid());
        CHECK(f.mon.seen(battery + ".a", "/Soc"));
        CHECK_FALSE(f.mon.seen(battery + ".a", "/Nope"));
        CHECK(f.mon.value(battery + ".a", "/Nope").is_invalid());

        // A service that appears later.
        Publisher b(f.daemon.address(),
                    config({service_json(battery + ".b", R"("/DeviceInstance": 2, "/Dc/0/Voltage": 24)")}));
        auto wait_b = f.mon.wait_for_service(battery + ".b", 5s);
        auto sb = co_await wait_b;
        REQUIRE(sb);
        CHECK(sb->device_instance == 2);
        CHECK(f.mon.value(battery + ".b", "/Dc/0/Voltage") == Value(24));
        co_await checkpoint();  // observers run on a later turn
        REQUIRE(added.size() == 2);
        CHECK(added[0].name == battery + ".a");
        CHECK(added[1].name == battery + ".b");
        CHECK(f.mon.services(battery).size() == 2);
    };
    run(f.loop, body);
    CHECK(f.mon.match_rules() == 3);
}

TEST_CASE("monitor: an old service without GetItems is read with GetValue on / and per path", "[monitor]") {
    Fixture f;
    const std::string items = R"("/DeviceInstance": 7, "/Ac/Power": 100.5, "/Other": "x")";
    SECTION("GetValue and GetText on / give the tree") {
        Publisher p(f.daemon.address(), config({service_json("com.victronenergy.grid.old", items, R"("getitems": false)")}));
        auto body = [&]() -> Task<void> {
            auto w = f.mon.wait_for_service("com.victronenergy.grid", 5s);
            auto s = co_await w;
            REQUIRE(s);
            CHECK(s->device_instance == 7);
            CHECK(f.mon.value(s->name, "/Ac/Power") == Value(100.5));
            CHECK(f.mon.text(s->name, "/Ac/Power") == "100.5");
            CHECK(f.mon.value(s->name, "/Other") == Value("x"));
        };
        run(f.loop, body);
    }
    SECTION("without the tree calls, the paths somebody observes are read one by one") {
        Publisher p(f.daemon.address(),
                    config({service_json("com.victronenergy.grid.older", items, R"("getitems": false, "tree": false)")}));
        auto body = [&]() -> Task<void> {
            auto sub = f.mon.on_change("com.victronenergy.grid", "/Ac/Power", [](auto&, auto&, auto&) {});
            auto w = f.mon.wait_for_service("com.victronenergy.grid", 5s);
            auto s = co_await w;
            REQUIRE(s);
            CHECK(s->device_instance == 7);
            CHECK(f.mon.value(s->name, "/Ac/Power") == Value(100.5));
            CHECK_FALSE(f.mon.seen(s->name, "/Other"));  // nobody asked for it
            // PropertiesChanged still reaches it.
            co_await publish(*f.bus, s->name, "/Ac/Power", 90);
            CHECK(f.mon.value(s->name, "/Ac/Power") == Value(90));
        };
        run(f.loop, body);
    }
}

TEST_CASE("monitor: follows ItemsChanged and PropertiesChanged - equal values are no change", "[monitor]") {
    Fixture f;
    const std::string name = battery + ".f";
    Publisher p(f.daemon.address(), config({service_json(name, battery_items)}));
    std::vector<std::string> log;
    auto body = [&]() -> Task<void> {
        auto w = f.mon.wait_for_service(name, 5s);
        auto found_service = co_await w;
        REQUIRE(found_service);
        co_await checkpoint();
        auto sub = f.mon.on_change(battery, "", [&](const std::string& s, const std::string& path, const Value& v) {
            CHECK(s == name);
            log.push_back(path + "=" + repr(v));
        });
        auto only_soc = f.mon.on_change(name, "/Soc", [&](auto&, auto&, const Value& v) { log.push_back("soc " + repr(v)); });
        // A throwing observer does not keep the others from their events, and
        // is not swallowed: nobody owns this one, so the loop's handler gets it.
        auto thrower = f.mon.on_change(name, "/Soc", [&](auto&, auto&, auto&) { throw std::runtime_error("observer bug"); });
        f.loop.on_unowned_failure([&](std::exception_ptr, const char* where, const std::string&) {
            log.push_back(std::string("failed: ") + where);
        });

        co_await publish(*f.bus, name, "/Dc/0/Voltage", 13.0, "prop");
        CHECK(f.mon.value(name, "/Dc/0/Voltage") == Value(13.0));
        co_await publish(*f.bus, name, "/Dc/0/Voltage", 13.5, "items");
        CHECK(f.mon.value(name, "/Dc/0/Voltage") == Value(13.5));
        // Equal values (Python ==): no change, and the cached type stays.
        co_await publish(*f.bus, name, "/Dc/0/Voltage", 13.5, "prop");
        co_await publish(*f.bus, name, "/Flag", 1, "items");
        CHECK(f.mon.value(name, "/Flag").is_bool());
        co_await publish(*f.bus, name, "/DeviceInstance", 1.0, "prop");
        // A batch, with a new path and an invalidation.
        Value::Dict batch{{"/Soc", 55}, {"/New", "n"}, {"/ProductName", Value()}};
        co_await publish_many(*f.bus, name, batch);
        CHECK(f.mon.value(name, "/Soc") == Value(55));
        CHECK(f.mon.value(name, "/ProductName").is_invalid());
        CHECK(f.mon.seen(name, "/New"));
        co_await checkpoint();
    };
    run(f.loop, body);
    CHECK(log == std::vector<std::string>{"/Dc/0/Voltage=13.0", "/Dc/0/Voltage=13.5", "/New='n'",
                                          "/ProductName=---", "/Soc=55", "soc 55", "failed: a monitor observer"});
    f.loop.on_unowned_failure(nullptr);
}

TEST_CASE("monitor: a scan reply never overwrites a newer signal value", "[monitor]") {
    Fixture f;
    const std::string name = battery + ".racy";
    // The publisher announces 99 before it sends the GetItems reply that still holds 12.5.
    Publisher p(f.daemon.address(), config({service_json(name, battery_items, R"("racy_getitems": {"/Dc/0/Voltage": 99.0})")}));
    auto body = [&]() -> Task<void> {
        auto w = f.mon.wait_for_service(name, 5s);
        auto found_service = co_await w;
        REQUIRE(found_service);
        CHECK(f.mon.value(name, "/Dc/0/Voltage") == Value(99.0));
        CHECK(f.mon.value(name, "/ProductName") == Value("Bat"));
    };
    run(f.loop, body);
}

TEST_CASE("monitor: a killed service goes invalid and is removed - when it returns it is read again", "[monitor]") {
    Fixture f;
    const std::string name = battery + ".k";
    auto pub = std::make_unique<Publisher>(f.daemon.address(), config({service_json(name, battery_items)}));
    std::vector<std::string> events;
    auto body = [&]() -> Task<void> {
        auto added = f.mon.on_service_added(battery, [&](const ServiceInfo& s) { events.push_back("added " + s.name); });
        auto removed = f.mon.on_service_removed(battery, [&](const ServiceInfo& s) {
            events.push_back("removed " + s.name + " " + std::to_string(s.device_instance.value_or(-1)));
        });
        auto volts = f.mon.on_change(name, "/Dc/0/Voltage", [&](auto&, auto&, const Value& v) { events.push_back("V=" + repr(v)); });
        auto w = f.mon.wait_for_service(name, 5s);
        auto found_service = co_await w;
        REQUIRE(found_service);
        CHECK(f.mon.value(name, "/Dc/0/Voltage") == Value(12.5));

        pub->kill(SIGKILL);  // no invalidation, no goodbye: the connection just closes
        auto change = f.mon.wait_for_change(name, "/Dc/0/Voltage", 5s);
        auto v = co_await change;
        REQUIRE(v);
        CHECK(v->is_invalid());
        CHECK(f.mon.value(name, "/Dc/0/Voltage").is_invalid());
        CHECK_FALSE(f.mon.seen(name, "/Dc/0/Voltage"));
        CHECK_FALSE(f.mon.service(name));
        CHECK(f.mon.services(battery).empty());

        pub = std::make_unique<Publisher>(f.daemon.address(),
                                          config({service_json(name, R"("/DeviceInstance": 1, "/Dc/0/Voltage": 11.0)")}));
        auto back_task = f.mon.wait_for_value(name, "/Dc/0/Voltage", 5s);
        auto back = co_await back_task;
        REQUIRE(back);
        CHECK(*back == Value(11.0));
        co_await checkpoint();
    };
    run(f.loop, body);
    CHECK(events == std::vector<std::string>{"added " + name, "V=12.5", "removed " + name + " 1", "V=---",
                                             "added " + name, "V=11.0"});
}

TEST_CASE("monitor: waiting for a change, with timeout and cancellation", "[monitor]") {
    Fixture f;
    const std::string name = battery + ".w";
    Publisher p(f.daemon.address(), config({service_json(name, battery_items)}));
    auto body = [&]() -> Task<void> {
        auto w = f.mon.wait_for_service(name, 5s);
        auto found_service = co_await w;
        REQUIRE(found_service);

        // Timeout: nothing changes.
        auto quiet_wait = f.mon.wait_for_change(name, "/Dc/0/Voltage", 100ms);
        auto quiet_result = co_await quiet_wait;
        CHECK_FALSE(quiet_result);
        CHECK(f.mon.waiting() == 0);

        // A change arrives in time.
        std::optional<Value> got;
        auto waiter = [&]() -> Task<void> {
            auto c = f.mon.wait_for_change(name, "/Dc/0/Voltage", 5s);
            got = co_await c;
        };
        auto changer = [&]() -> Task<void> {
            co_await sleep_for(50ms);
            co_await publish(*f.bus, name, "/Dc/0/Voltage", 14.25, "items");
        };
        auto both = [&](TaskGroup& g) -> Task<void> {
            g.spawn(waiter());
            g.spawn(changer());
            co_return;
        };
        co_await with_group(both);
        REQUIRE(got);
        CHECK(*got == Value(14.25));

        // Cancelled waits (no timeout, and through with_timeout) leave nothing registered.
        auto forever = [&]() -> Task<void> {
            auto c = f.mon.wait_for_change(name, "/Soc");
            co_await c;
            FAIL("not cancelled");
        };
        auto cancel_it = [&](TaskGroup& g) -> Task<void> {
            auto ref = g.spawn(forever());
            co_await sleep_for(20ms);
            CHECK(f.mon.waiting() == 1);
            ref.cancel();
        };
        co_await with_group(cancel_it);
        CHECK(f.mon.waiting() == 0);
        bool timed_out = false;
        try {
            auto t = with_timeout(50ms, f.mon.wait_for_value(name, "/Soc", 10s));
            co_await t;
        } catch (const TimeoutError&) {
            timed_out = true;
        }
        CHECK(timed_out);
        CHECK(f.mon.waiting() == 0);
    };
    run(f.loop, body);
}

TEST_CASE("monitor: waiting for a service by prefix or name", "[monitor]") {
    Fixture f;
    std::unique_ptr<Publisher> later;
    auto body = [&]() -> Task<void> {
        auto none = f.mon.wait_for_service("com.victronenergy.solarcharger", 100ms);
        auto none_found = co_await none;
        CHECK_FALSE(none_found);
        CHECK(f.mon.waiting() == 0);

        std::optional<ServiceInfo> found;
        auto waiter = [&]() -> Task<void> {
            auto w = f.mon.wait_for_service("com.victronenergy.solarcharger", 10s);
            found = co_await w;
        };
        auto starter = [&]() -> Task<void> {
            co_await sleep_for(50ms);
            later = std::make_unique<Publisher>(
                f.daemon.address(), config({service_json("com.victronenergy.solarcharger.ttyS2", R"("/DeviceInstance": 279)")}));
        };
        auto both = [&](TaskGroup& g) -> Task<void> {
            g.spawn(waiter());
            g.spawn(starter());
            co_return;
        };
        co_await with_group(both);
        REQUIRE(found);
        CHECK(found->name == "com.victronenergy.solarcharger.ttyS2");
        CHECK(found->device_instance == 279);
        // Already there: at once.
        auto again = f.mon.wait_for_service("com.victronenergy.solarcharger.ttyS2", 1ms);
        auto again_found = co_await again;
        CHECK(again_found);

        auto forever = [&]() -> Task<void> {
            auto w = f.mon.wait_for_service("com.victronenergy.genset");
            co_await w;
        };
        auto cancel_it = [&](TaskGroup& g) -> Task<void> {
            auto ref = g.spawn(forever());
            co_await sleep_for(20ms);
            CHECK(f.mon.waiting() == 1);
            ref.cancel();
        };
        co_await with_group(cancel_it);
        CHECK(f.mon.waiting() == 0);
    };
    run(f.loop, body);
}

TEST_CASE("monitor: SetValue yields the service's result code, -1 for unknown targets and errors", "[monitor]") {
    Fixture f;
    const std::string name = "com.victronenergy.vebus.ttyO1";
    Publisher p(f.daemon.address(),
                config({service_json(name, R"("/DeviceInstance": 276, "/Mode": 3, "/ProductName": "Multi", "/Broken": 0)",
                                     R"("readonly": ["/ProductName"], "refuse_negative": ["/Mode"], "error_paths": ["/Broken"])")}));
    std::vector<int> codes;
    auto body = [&]() -> Task<void> {
        auto w = f.mon.wait_for_service(name, 5s);
        auto found_service = co_await w;
        REQUIRE(found_service);
        { int r = co_await f.mon.set_value(name, "/Mode", 1); codes.push_back(r); }
        // The service announced the change before it replied.
        CHECK(f.mon.value(name, "/Mode") == Value(1));
        { int r = co_await f.mon.set_value(name, "/Mode", 1.0); codes.push_back(r); }          // equal: 0
        { int r = co_await f.mon.set_value(name, "/ProductName", "x"); codes.push_back(r); }    // read-only: 1
        { int r = co_await f.mon.set_value(name, "/Mode", -4); codes.push_back(r); }           // refused: 2
        { int r = co_await f.mon.set_value(name, "/Broken", 1); codes.push_back(r); }          // D-Bus error: -1
        { int r = co_await f.mon.set_value(name, "/NoSuchPath", 1); codes.push_back(r); }      // unknown path: -1
        CHECK(f.mon.calls_in_flight() == 0);
        { int r = co_await f.mon.set_value("com.victronenergy.vebus.none", "/Mode", 1); codes.push_back(r); }  // unknown service
    };
    run(f.loop, body);
    CHECK(codes == std::vector<int>{0, 0, 1, 2, -1, -1, -1});
}

TEST_CASE("monitor: services of a class with their DeviceInstance - find by DeviceInstance", "[monitor]") {
    Fixture f;
    Publisher p(f.daemon.address(),
                config({service_json(battery + ".a", R"("/DeviceInstance": 1)"),
                        service_json(battery + ".b", R"("/DeviceInstance": 2)"),
                        service_json(battery + ".noinstance", R"("/Soc": 50)"),
                        service_json("com.victronenergy.grid.cg_1", R"("/DeviceInstance": 30)"),
                        service_json("com.victronenergy.settings", R"("/Settings/A": 1)")}));
    auto body = [&]() -> Task<void> {
        f.mon.watch("com.victronenergy.");
        while (f.mon.services("com.victronenergy.").size() < 5) co_await sleep_for(10ms);
        auto list = f.mon.services(battery);
        REQUIRE(list.size() == 3);
        CHECK(list[0].name == battery + ".a");
        CHECK(list[0].device_instance == 1);
        CHECK(list[1].device_instance == 2);
        CHECK_FALSE(list[2].device_instance);
        CHECK(f.mon.service("com.victronenergy.settings")->device_instance == 0);
        auto b = f.mon.find_by_instance(battery, 2);
        REQUIRE(b);
        CHECK(b->name == battery + ".b");
        CHECK_FALSE(f.mon.find_by_instance(battery, 30));
        CHECK(f.mon.find_by_instance("com.victronenergy.grid", 30)->name == "com.victronenergy.grid.cg_1");
        // An instance change is seen at once.
        co_await publish(*f.bus, battery + ".a", "/DeviceInstance", 5);
        CHECK(f.mon.find_by_instance(battery, 5)->name == battery + ".a");
    };
    run(f.loop, body);
}

TEST_CASE("monitor: a /DeviceInstance that is NaN, infinite or huge is no instance", "[monitor]") {
    Fixture f;
    // (Python's json reads NaN and Infinity; the publisher sends them as doubles)
    Publisher p(f.daemon.address(),
                config({service_json(battery + ".nan", R"("/DeviceInstance": NaN)"),
                        service_json(battery + ".inf", R"("/DeviceInstance": Infinity)"),
                        service_json(battery + ".minf", R"("/DeviceInstance": -Infinity)"),
                        service_json(battery + ".huge", R"("/DeviceInstance": 1e300)"),
                        service_json(battery + ".ok", R"("/DeviceInstance": 7.0)")}));
    auto body = [&]() -> Task<void> {
        f.mon.watch(battery);
        while (f.mon.services(battery).size() < 5) co_await sleep_for(10ms);
        for (auto& s : f.mon.services(battery)) {
            INFO(s.name);
            if (s.name == battery + ".ok") CHECK(s.device_instance == 7);
            else CHECK_FALSE(s.device_instance);
        }
        CHECK(f.mon.find_by_instance(battery, 7)->name == battery + ".ok");
        CHECK_FALSE(f.mon.find_by_instance(battery, std::numeric_limits<std::int64_t>::min()));
    };
    run(f.loop, body);
}

namespace {
using OwnerLog = test::RecordingOwner;
} // namespace

TEST_CASE("monitor: an observer that throws fails the owner that subscribed it", "[monitor]") {
    Fixture f;
    const std::string name = battery + ".observer";
    Publisher p(f.daemon.address(), config({service_json(name, battery_items)}));
    auto owner = std::make_shared<OwnerLog>();
    std::optional<Subscription> sub;
    auto body = [&]() -> Task<void> {
        detail::Fiber& fiber = co_await detail::this_fiber();
        fiber.owner = owner;
        sub = f.mon.on_change(name, "/Soc", [](auto&, auto&, const Value&) { throw std::runtime_error("observer bug"); });
        auto w = f.mon.wait_for_service(name, 5s);
        co_await w;
        co_await publish(*f.bus, name, "/Soc", 55, "items");
        while (owner->failures.empty()) co_await checkpoint();
    };
    run(f.loop, body);
    CHECK(owner->failures == std::vector<std::string>{"a monitor observer: observer bug"});
    sub.reset();
}

TEST_CASE("monitor: a change between wait_for_change() and its co_await is not lost", "[monitor]") {
    Fixture f;
    const std::string name = battery + ".gap";
    Publisher p(f.daemon.address(), config({service_json(name, battery_items)}));
    auto body = [&]() -> Task<void> {
        auto w = f.mon.wait_for_service(name, 5s);
        auto found = co_await w;
        REQUIRE(found);
        auto change = f.mon.wait_for_change(name, "/Dc/0/Voltage", 5s);
        // The change arrives before the wait is awaited.
        co_await publish(*f.bus, name, "/Dc/0/Voltage", 13.5, "items");
        // ... and is processed by the monitor before it is.
        while (!(f.mon.value(name, "/Dc/0/Voltage") == Value(13.5))) co_await checkpoint();
        auto got = co_await change;
        REQUIRE(got);
        CHECK(*got == Value(13.5));
        CHECK(f.mon.waiting() == 0);
    };
    run(f.loop, body);
}

TEST_CASE("monitor: values age - a max age makes a path invalid without updates", "[monitor]") {
    Fixture f;
    VirtualClock clock(f.loop);
    f.loop.set_clock(clock);
    const std::string name = battery + ".s";
    Publisher p(f.daemon.address(), config({service_json(name, battery_items)}));
    std::vector<std::string> log;
    auto sub = f.mon.on_change(name, "/Dc/0/Voltage", [&](auto&, auto&, const Value& v) { log.push_back(repr(v)); });
    auto ready = [&]() -> Task<void> {
        auto w = f.mon.wait_for_service(name);  // no timeout: the clock is virtual
        co_await w;
        co_await checkpoint();
    };
    run(f.loop, ready);
    CHECK(f.mon.value(name, "/Dc/0/Voltage", 2s) == Value(12.5));
    clock.advance(3s);
    CHECK(f.mon.value(name, "/Dc/0/Voltage", 2s).is_invalid());
    CHECK(f.mon.value(name, "/Dc/0/Voltage") == Value(12.5));
    CHECK(*f.mon.age(name, "/Dc/0/Voltage") == 3s);

    // An equal value still counts as an update.
    auto same = [&]() -> Task<void> { co_await publish(*f.bus, name, "/Dc/0/Voltage", 12.5); };
    run(f.loop, same);
    CHECK(f.mon.value(name, "/Dc/0/Voltage", 2s) == Value(12.5));

    f.mon.set_max_age(name, "/Dc/0/Voltage", 5s);
    clock.advance(4s);
    CHECK(f.mon.value(name, "/Dc/0/Voltage") == Value(12.5));
    clock.advance(2s);
    CHECK(f.mon.value(name, "/Dc/0/Voltage").is_invalid());
    CHECK(log == std::vector<std::string>{"12.5", "---"});
    // The next update (even of the same value) makes it valid again and is a change.
    run(f.loop, same);
    CHECK(f.mon.value(name, "/Dc/0/Voltage") == Value(12.5));
    clock.advance(0s);
    CHECK(log == std::vector<std::string>{"12.5", "---", "12.5"});
    // The expiry timer lives on the virtual clock, which goes before the fixture.
    f.mon.set_max_age(name, "/Dc/0/Voltage", std::nullopt);
    f.loop.use_real_clock();
}

namespace {
/// A clock whose timers fire only when told, as early as the test likes.
struct ManualClock final : Clock {
    TimePoint t = TimePoint{} + 1h;
    TimerId next = 1;
    std::map<TimerId, std::function<void()>> timers;
    TimePoint now() const override { return t; }
    TimerId schedule(TimePoint, std::function<void()> fn) override {
        timers.emplace(next, std::move(fn));
        return next++;
    }
    void cancel(TimerId id) override { timers.erase(id); }
    void fire_all() {
        auto due = std::move(timers);
        timers.clear();
        for (auto& [id, fn] : due) fn();
    }
};
} // namespace

TEST_CASE("monitor: an expiry timer that fires early does not make a fresh value stale", "[monitor]") {
    Fixture f;
    ManualClock clock;
    f.loop.set_clock(clock);
    const std::string name = battery + ".early";
    Publisher p(f.daemon.address(), config({service_json(name, battery_items)}));
    auto ready = [&]() -> Task<void> {
        auto w = f.mon.wait_for_service(name);
        co_await w;
        co_await checkpoint();
    };
    run(f.loop, ready);
    f.mon.set_max_age(name, "/Dc/0/Voltage", 5s);
    clock.t += 2s;
    clock.fire_all();  // 3 s early
    CHECK(f.mon.value(name, "/Dc/0/Voltage") == Value(12.5));
    REQUIRE(clock.timers.size() == 1);  // armed again for the rest
    clock.t += 3s;
    clock.fire_all();
    CHECK(f.mon.value(name, "/Dc/0/Voltage").is_invalid());
    f.mon.set_max_age(name, "/Dc/0/Voltage", std::nullopt);
    f.loop.use_real_clock();
}

TEST_CASE("monitor: 20 services of 100 paths with three match rules", "[monitor]") {
    Fixture f;
    std::vector<std::string> services;
    for (int i = 0; i < 20; ++i)
        services.push_back(service_json("com.victronenergy.pvinverter.pv" + std::to_string(i),
                                        R"("/DeviceInstance": )" + std::to_string(100 + i), R"("generate": 100)"));
    std::string cfg = R"({"services": [)";
    for (std::size_t i = 0; i < services.size(); ++i) cfg += (i ? ", " : "") + services[i];
    cfg += "]}";
    Publisher p(f.daemon.address(), cfg);
    const std::size_t rules_before = daemon_match_rules(f);
    std::size_t changes = 0;
    auto body = [&]() -> Task<void> {
        auto sub = f.mon.on_change("com.victronenergy.pvinverter", "", [&](auto&, auto&, auto&) { ++changes; });
        while (f.mon.services("com.victronenergy.pvinverter").size() < 20) co_await sleep_for(10ms);
        for (int i = 0; i < 20; ++i) {
            auto name = "com.victronenergy.pvinverter.pv" + std::to_string(i);
            CHECK(f.mon.service(name)->device_instance == 100 + i);
            for (int k = 0; k < 100; k += 11) CHECK(f.mon.value(name, "/Gen/" + std::to_string(k)) == Value(k));
        }
        co_await checkpoint();
        CHECK(changes == 20 * 101);
        Value::Dict batch;
        for (int k = 0; k < 100; ++k) batch["/Gen/" + std::to_string(k)] = k + 1000;
        co_await publish_many(*f.bus, "com.victronenergy.pvinverter.pv7", batch);
        CHECK(f.mon.value("com.victronenergy.pvinverter.pv7", "/Gen/99") == Value(1099));
        co_await checkpoint();
        CHECK(changes == 20 * 101 + 100);
    };
    run(f.loop, body, 60s);
    CHECK(f.mon.match_rules() == 3);
    CHECK(daemon_match_rules(f) - rules_before == 3);
}

TEST_CASE("monitor: a signal with an undecodable value skips just that entry", "[monitor]") {
    // The monitor reads signals straight from sd-bus and falls back to the
    // slower reader for values it cannot take (a struct): the others count.
    Fixture f;
    const std::string name = battery + ".odd";
    moat::Service svc(f.loop, name, f.daemon.address(), quiet());
    svc.set_device(false);
    svc.add("/DeviceInstance", 7);
    svc.add("/A", 1);
    svc.add("/B", 2);
    // Objects of our own on the service's connection, to send what it never would.
    auto root = sdbus::createObject(detail::connection(svc.bus()), "/");
    root->registerSignal(busitem_interface, "ItemsChanged", "a{sa{sv}}");
    root->finishRegistration();
    auto a_object = sdbus::createObject(detail::connection(svc.bus()), "/A");
    a_object->registerSignal(busitem_interface, "PropertiesChanged", "a{sv}");
    a_object->finishRegistration();
    auto body = [&]() -> Task<void> {
        co_await svc.start();
        auto w = f.mon.wait_for_service(name, 5s);
        REQUIRE(co_await w);
        using Attrs = std::map<std::string, sdbus::Variant>;
        auto b_changed = f.mon.wait_for_change(name, "/B", 5s);
        auto items = root->createSignal(busitem_interface, "ItemsChanged");
        items << std::map<std::string, Attrs>{
            {"/A", {{"Value", sdbus::Variant(sdbus::Struct<std::int32_t, std::string>(5, "x"))}, {"Text", sdbus::Variant(std::string("x"))}}},
            {"/B", {{"Value", sdbus::Variant(std::int32_t(5))}, {"Text", sdbus::Variant(std::int32_t(5))}}}};
        root->emitSignal(items);
        auto got = co_await b_changed;
        REQUIRE(got);
        CHECK(*got == Value(5));
        CHECK(f.mon.text(name, "/B") == "5");  // a Text that is no string: the default text
        CHECK(f.mon.value(name, "/A") == Value(1));
        // PropertiesChanged with a `t` beyond int64 is skipped; the next one counts.
        auto a_changed = f.mon.wait_for_change(name, "/A", 5s);
        auto props = a_object->createSignal(busitem_interface, "PropertiesChanged");
        props << Attrs{{"Value", sdbus::Variant(std::uint64_t(1) << 63)}, {"Text", sdbus::Variant(std::string("big"))}};
        a_object->emitSignal(props);
        svc.set("/A", 3);
        auto a = co_await a_changed;
        REQUIRE(a);
        CHECK(*a == Value(3));
    };
    run(f.loop, body);
}
