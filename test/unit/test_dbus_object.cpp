// DBusObject: struct signatures, asynchronous methods, signals and argument
// names, called from a second connection through a private dbus-daemon.
#include <catch2/catch.hpp>
#include <thread>
#include <fmt/format.h>

#include "bus_call.hpp"
#include "moat/dbus.hpp"
#include "private_daemon.hpp"
#include "value_dbus.hpp"

using namespace moat;
using namespace std::chrono_literals;

namespace {

constexpr const char* iface = "org.example.Test";

Logger quiet() { return Logger("test", null_sink()); }

struct Fixture {
    PrivateDaemon daemon{MOAT_TEST_DIR "/fixtures/dbus-test.conf"};
    Loop loop;
    std::unique_ptr<Bus> server = Bus::open(loop, daemon.address(), quiet());
    std::unique_ptr<Bus> client = Bus::open(loop, daemon.address(), quiet());

    Task<std::vector<Value>> call(std::string method, std::string signature = {}, std::vector<Value> args = {},
                                  std::string path = "/t") {
        return call_method(*client, server->unique_name(), std::move(path), iface, std::move(method),
                           std::move(signature), std::move(args), 5s);
    }
    std::string introspect(const std::string& path = "/t") {
        auto t = call_method(*client, server->unique_name(), path, "org.freedesktop.DBus.Introspectable", "Introspect",
                             {}, {}, 5s);
        return run_until_complete(loop, std::move(t)).at(0).as_string();
    }
};

Value cell(double v, bool in_balance, double pwm, bool forced) {
    return Value(Value::List{v, in_balance, pwm, forced});
}

} // namespace

TEST_CASE("a struct is a List of its members, also inside an array, both ways", "[dbus]") {
    Fixture f;
    DBusObject o(*f.server, "/t");
    std::vector<Value> seen;
    o.add_method(iface, "Echo", "a(dbdb)(dd)", "a(dbdb)(dd)", [&](const std::vector<Value>& a) {
        seen = a;
        return a;
    });
    o.add_method(iface, "Wrong", "", "a(dd)", [](const auto&) {
        return std::vector<Value>{Value(Value::List{Value(Value::List{1.0})})};  // one member, two declared
    });
    o.publish();
    const Value cells(Value::List{cell(3.3, true, 0.5, false), cell(3.25, false, -1.0, true)});
    const Value pair(Value::List{21.5, -1000.0});
    auto reply = run_until_complete(f.loop, f.call("Echo", "a(dbdb)(dd)", {cells, pair}));
    REQUIRE(reply.size() == 2);
    CHECK(reply[0] == cells);
    CHECK(reply[1] == pair);
    REQUIRE(seen.size() == 2);
    CHECK(seen[0] == cells);

    try {
        run_until_complete(f.loop, f.call("Wrong"));
        FAIL("no error");
    } catch (const DBusError& e) {
        CHECK(e.name() == "org.freedesktop.DBus.Error.Failed");
        CHECK_THAT(e.message(), Catch::Contains("(dd)"));
    }
    // A struct argument of the wrong shape is the caller's error.
    CHECK_THROWS_AS(run_until_complete(f.loop, f.call("Echo", "a(dbdb)(dd)", {cells, Value(Value::List{1.0})})),
                    std::invalid_argument);
}

TEST_CASE("an asynchronous method answers when its task ends, and its errors are replies", "[dbus]") {
    Fixture f;
    DBusObject o(*f.server, "/t");
    int running = 0, peak = 0;
    o.add_async_method(iface, "Slow", "d", "d", [&](std::vector<Value> a) -> Task<std::vector<Value>> {
        ++running;
        peak = std::max(peak, running);
        co_await sleep_for(20ms);
        --running;
        co_return std::vector<Value>{*a.at(0).as_number() * 2};
    });
    o.add_async_method(iface, "Fails", "", "b", [](std::vector<Value>) -> Task<std::vector<Value>> {
        co_await sleep_for(1ms);
        throw DBusError("org.example.Error.Kind", "it went wrong");
    });
    o.add_async_method(iface, "Throws", "", "b", [](std::vector<Value>) -> Task<std::vector<Value>> {
        co_await checkpoint();
        throw std::runtime_error("plain failure");
    });
    o.add_async_method(iface, "BadResult", "", "b", [](std::vector<Value>) -> Task<std::vector<Value>> {
        co_return std::vector<Value>{std::string("not a bool")};
    });
    o.publish();

    // Two calls at once run side by side.
    std::vector<double> results;
    auto one = [&](double x) -> Task<void> {
        std::vector<Value> args{x};
        auto r = co_await f.call("Slow", "d", std::move(args));
        results.push_back(*r.at(0).as_number());
    };
    auto both = [&]() -> Task<void> {
        co_await with_group([&](TaskGroup& g) -> Task<void> {
            g.spawn(one(1.5));
            g.spawn(one(4.0));
            co_return;
        });
    };
    run_until_complete(f.loop, both());
    std::sort(results.begin(), results.end());
    CHECK(results == std::vector<double>{3.0, 8.0});
    CHECK(peak == 2);

    auto error_of = [&](const char* method) {
        try {
            run_until_complete(f.loop, f.call(method));
        } catch (const DBusError& e) {
            return e.name() + " " + e.message();
        }
        return std::string("no error");
    };
    // (the client's message names the call first)
    CHECK_THAT(error_of("Fails"), Catch::StartsWith("org.example.Error.Kind") && Catch::EndsWith(": it went wrong"));
    CHECK_THAT(error_of("Throws"),
               Catch::StartsWith("org.freedesktop.DBus.Error.Failed") && Catch::EndsWith(": plain failure"));
    CHECK_THAT(error_of("BadResult"), Catch::StartsWith("org.freedesktop.DBus.Error.Failed"));
    // Wrong argument types never reach the handler (sd-bus checks the signature).
    CHECK_THAT(error_of("Slow"), Catch::StartsWith("org.freedesktop.DBus.Error.InvalidArgs"));
}

TEST_CASE("destroying the object cancels a running asynchronous call and answers its caller", "[dbus]") {
    Fixture f;
    auto o = std::make_unique<DBusObject>(*f.server, "/t");
    Event started, never;
    bool unwound = false, cancelled = false;
    struct OnUnwind {
        bool& flag;
        ~OnUnwind() { flag = true; }
    };
    // A capture by value: the task's frame points into the handler object.
    auto payload = std::make_shared<std::string>("kept alive");
    o->add_async_method(iface, "Hang", "", "s",
                        [&, payload](std::vector<Value>) -> Task<std::vector<Value>> {
                            OnUnwind guard{unwound};
                            started.set();
                            try {
                                co_await never.wait();
                            } catch (const Cancelled&) {
                                cancelled = *payload == "kept alive";
                                throw;
                            }
                            co_return std::vector<Value>{*payload};
                        });
    o->publish();
    std::string error;
    auto caller = [&]() -> Task<void> {
        try {
            co_await f.call("Hang");
        } catch (const DBusError& e) {
            error = e.name() + " " + e.message();
        }
    };
    auto remover = [&]() -> Task<void> {
        co_await started.wait();
        o.reset();
        payload.reset();  // the handler's copy is the last one
    };
    auto both = [&]() -> Task<void> {
        co_await with_group([&](TaskGroup& g) -> Task<void> {
            g.spawn(caller());
            g.spawn(remover());
            co_return;
        });
        while (!unwound) co_await checkpoint();
    };
    run_until_complete(f.loop, both());
    CHECK_THAT(error, Catch::StartsWith("org.freedesktop.DBus.Error.Failed"));
    CHECK_THAT(error, Catch::Contains("removed"));
    CHECK(cancelled);
    CHECK(unwound);
}

TEST_CASE("a call that arrives as its object is destroyed is answered and never starts its handler", "[dbus]") {
    // Two calls reach the server in one read: Hang on /t (asynchronous: its task
    // is posted) and Kill on /k, whose handler destroys /t before the loop gets
    // to Hang's task. The loop is held while both travel, so that they are
    // dispatched in the same turn; a handler that ran at all says it was not.
    Fixture f;
    bool same_turn = false;
    for (int attempt = 0; attempt < 5 && !same_turn; ++attempt) {
        auto o = std::make_unique<DBusObject>(*f.server, "/t");
        bool ran = false, ran_without_object = false;
        o->add_async_method(iface, "Hang", "", "s", [&](std::vector<Value>) -> Task<std::vector<Value>> {
            ran = true;
            ran_without_object = o == nullptr;
            co_return std::vector<Value>{std::string("ran")};
        });
        o->publish();
        DBusObject killer(*f.server, "/k");
        killer.add_method(iface, "Kill", "", "", [&](const std::vector<Value>&) {
            o.reset();
            return std::vector<Value>{};
        });
        killer.publish();

        std::string hang_error;
        bool killed = false;
        auto hang = [&]() -> Task<void> {
            try {
                co_await f.call("Hang");
            } catch (const DBusError& e) {
                hang_error = e.name() + " " + e.message();
            }
        };
        auto kill = [&]() -> Task<void> {
            co_await f.call("Kill", {}, {}, "/k");
            killed = true;
        };
        auto hold = [&]() -> Task<void> {
            std::this_thread::sleep_for(200ms);  // the loop is held: both calls wait in the server's socket
            co_return;
        };
        auto all = [&]() -> Task<void> {
            co_await with_group([&](TaskGroup& g) -> Task<void> {
                g.spawn(hang());
                g.spawn(kill());
                g.spawn(hold());
                co_return;
            });
        };
        run_until_complete(f.loop, all());
        CHECK(killed);
        CHECK_FALSE(ran_without_object);
        if (ran) continue;  // Hang was dispatched a turn earlier: not the case under test, try again
        same_turn = true;
        CHECK_THAT(hang_error, Catch::StartsWith("org.freedesktop.DBus.Error.Failed"));
        CHECK_THAT(hang_error, Catch::Contains("removed"));
    }
    CHECK(same_turn);
}

TEST_CASE("signals are emitted with their signature and introspection names arguments", "[dbus]") {
    Fixture f;
    DBusObject o(*f.server, "/t");
    o.add_method(iface, "Get", "b", "a(dbdb)", [](const auto&) { return std::vector<Value>{Value()}; });
    o.add_async_method(iface, "Set", "ddb", "b", [](std::vector<Value>) -> Task<std::vector<Value>> {
        co_return std::vector<Value>{true};
    });
    o.add_signal(iface, "VoltageChanged", "ddbb");
    o.add_signal(iface, "CellTemperatureChanged", "a(vv)");
    o.name_arguments(iface, "Set", {"cap", "loss", "top"});
    o.name_arguments(iface, "VoltageChanged", {"voltage", "current", "charge", "discharge"});
    CHECK_THROWS_AS(o.name_arguments(iface, "Set", {"only one"}), std::invalid_argument);
    CHECK_THROWS_AS(o.name_arguments(iface, "Missing", {}), std::logic_error);
    CHECK_THROWS_AS(o.emit_signal(iface, "VoltageChanged", {1.0, 2.0, true, false}), std::logic_error);
    o.publish();
    CHECK_THROWS_AS(o.add_signal(iface, "Late", "d"), std::logic_error);

    const std::string xml = f.introspect();
    CHECK_THAT(xml, Catch::Contains("<method name=\"Get\">"));
    CHECK_THAT(xml, Catch::Contains("type=\"a(dbdb)\" direction=\"out\""));
    CHECK_THAT(xml, Catch::Contains("type=\"d\" name=\"cap\" direction=\"in\""));
    CHECK_THAT(xml, Catch::Contains("type=\"b\" name=\"top\" direction=\"in\""));
    CHECK_THAT(xml, Catch::Contains("<signal name=\"VoltageChanged\">"));
    CHECK_THAT(xml, Catch::Contains("type=\"b\" name=\"discharge\""));
    CHECK_THAT(xml, Catch::Contains("<signal name=\"CellTemperatureChanged\">"));
    CHECK_THAT(xml, Catch::Contains("type=\"a(vv)\""));
    // An empty array reads as invalid, as everywhere.
    auto got = run_until_complete(f.loop, f.call("Get", "b", {true}));
    CHECK(!got.at(0).is_valid());

    std::vector<std::vector<Value>> received;
    Event arrived;
    auto slot = detail::connection(*f.client).addMatch(
        fmt::format("type='signal',interface='{}',path='/t'", iface), [&](sdbus::Message& m) {
            // The signature by the member (the library's reader is internal).
            const std::string sig = m.getMemberName() == std::string("VoltageChanged") ? "ddbb" : "a(vv)";
            std::vector<Value> args;
            for (const auto& t : split_signature(sig)) args.push_back(read_value(m, t, true));
            received.push_back(std::move(args));
            arrived.set();
        });
    CHECK_THROWS_AS(o.emit_signal(iface, "VoltageChanged", {1.0}), std::invalid_argument);
    CHECK_THROWS_AS(o.emit_signal(iface, "Undeclared", {}), std::logic_error);
    o.emit_signal(iface, "VoltageChanged", {52.1, -3.5, true, false});
    const Value temps(Value::List{Value(Value::List{25.0, false}), Value(Value::List{24.5, 23.0})});
    o.emit_signal(iface, "CellTemperatureChanged", {temps});
    auto next = [&]() -> Task<void> { co_await arrived.wait(); };
    auto wait = [&]() -> Task<void> {
        while (received.size() < 2) {
            arrived.clear();
            auto t = with_timeout(5s, next());
            co_await t;
        }
    };
    run_until_complete(f.loop, wait());
    CHECK(received[0] == std::vector<Value>{52.1, -3.5, true, false});
    CHECK(received[1] == std::vector<Value>{temps});
}
