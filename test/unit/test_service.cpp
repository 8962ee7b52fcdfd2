#include <catch2/catch.hpp>

#include "bus_call.hpp"
#include "value_dbus.hpp"
#include "moat/service.hpp"
#include "private_daemon.hpp"

using namespace moat;
using namespace std::chrono_literals;

namespace {

Logger quiet() { return Logger("test", null_sink()); }

/// Captures log lines.
struct Capture : LogSink {
    std::vector<std::string> lines;
    void write(LogLevel, std::string_view line) override { lines.emplace_back(line); }
};

constexpr const char* svc_name = "com.victronenergy.battery.unit";

/// Records the BusItem signals a client connection receives.
struct SignalLog {
    struct Entry {
        std::string member, path;
        std::size_t entries;
    };
    std::vector<Entry> seen;
    sdbus::Slot slot;

    explicit SignalLog(Bus& client) {
        slot = detail::connection(client).addMatch(
            "type='signal',interface='com.victronenergy.BusItem'", [this](sdbus::Message& m) {
                std::map<std::string, sdbus::Variant> props;
                std::map<std::string, std::map<std::string, sdbus::Variant>> items;
                std::size_t n = 0;
                if (m.getMemberName() == "ItemsChanged") {
                    m >> items;
                    n = items.size();
                } else {
                    m >> props;
                    n = props.size();
                }
                seen.push_back({m.getMemberName(), m.getPath(), n});
            });
    }
};

/// A round trip to the service through the daemon: signals it sent before
/// are in by then.
Task<void> settle(Bus& client) {
    co_await bus_call(client, svc_name, "/", busitem_interface, "GetValue", 2s);
    co_await sleep_for(20ms);
}

Task<std::int32_t> remote_set(Bus& client, std::string path, Value v) {
    auto reply = co_await bus_call(client, svc_name, path, busitem_interface, "SetValue", 2s, to_variant(v));
    std::int32_t code = -1;
    reply >> code;
    co_return code;
}

} // namespace

TEST_CASE("coercion follows Python's int(), float() and str()", "[service]") {
    using VT = ValueType;
    CHECK(coerce(Value(1.7), VT::integer) == Value(1));
    CHECK(coerce(Value(-1.7), VT::integer)->as_int() == -1);
    CHECK(coerce(Value(true), VT::integer)->is_int());
    CHECK(coerce(Value(" -250 "), VT::integer) == Value(-250));
    CHECK(coerce(Value("1_000"), VT::integer) == Value(1000));
    CHECK_FALSE(coerce(Value("2.5"), VT::integer));
    CHECK_FALSE(coerce(Value("0x10"), VT::integer));
    CHECK_FALSE(coerce(Value("1__0"), VT::integer));
    CHECK_FALSE(coerce(Value("_1"), VT::integer));
    CHECK_FALSE(coerce(Value(""), VT::integer));
    CHECK_FALSE(coerce(Value(std::nan("")), VT::integer));
    CHECK_FALSE(coerce(Value::make_list({1}), VT::integer));
    CHECK(coerce(Value(), VT::integer)->is_invalid());

    CHECK(coerce(Value(5), VT::floating)->is_double());
    CHECK(coerce(Value("12.5"), VT::floating) == Value(12.5));
    CHECK(coerce(Value(" 1e3 "), VT::floating) == Value(1000.0));
    CHECK(coerce(Value(".5"), VT::floating) == Value(0.5));
    CHECK(coerce(Value("5."), VT::floating) == Value(5.0));
    CHECK(std::isinf(coerce(Value("-Infinity"), VT::floating)->as_double()));
    CHECK(std::isnan(coerce(Value("nan"), VT::floating)->as_double()));
    CHECK_FALSE(coerce(Value("0x1p3"), VT::floating));
    CHECK_FALSE(coerce(Value("abc"), VT::floating));
    CHECK_FALSE(coerce(Value("."), VT::floating));
    CHECK_FALSE(coerce(Value::make_dict({{"a", 1}}), VT::floating));

    CHECK(coerce(Value(5), VT::string) == Value("5"));
    CHECK(coerce(Value(2.5), VT::string) == Value("2.5"));
    CHECK(coerce(Value(true), VT::string) == Value("True"));
    CHECK(coerce(Value(), VT::string)->is_invalid());
    CHECK(coerce(Value("x"), VT::any) == Value("x"));
}

TEST_CASE("printf formatters take Venus formats", "[service]") {
    CHECK(format::printf("%.1F A")(Value(12.34)) == "12.3 A");
    CHECK(format::printf("%.1F A")(Value(12)) == "12.0 A");
    CHECK(format::printf("%d")(Value(12.7)) == "12");
    CHECK(format::printf("%d")(Value(-3.7)) == "-3");
    CHECK(format::printf("%d")(Value(true)) == "1");
    CHECK(format::printf("%dW")(Value(-200)) == "-200W");
    CHECK(format::printf("%.0F %%")(Value(55.5)) == "56 %");
    CHECK(format::printf("%.0f%%")(Value(55)) == "55%");
    CHECK(format::printf("%.2fV")(Value(12.5)) == "12.50V");
    CHECK(format::printf("%x")(Value(-255)) == "-ff");
    CHECK(format::printf("%04X")(Value(0xB001)) == "B001");
    CHECK(format::printf("%5.1f|")(Value(1.25)) == "  1.2|");
    CHECK(format::printf("[%s]")(Value("abc")) == "[abc]");
    CHECK(format::printf("%ld s")(Value(7)) == "7 s");
    CHECK(format::printf("no value")(Value(7)) == "no value");
    // a value the conversion cannot take: the default text
    CHECK(format::printf("%d")(Value("abc")) == "abc");
    CHECK(format::printf("%.1f")(Value::make_list({1})) == "[1]");
    CHECK(format::printf("%d")(Value(std::numeric_limits<double>::infinity())) == "inf");
    CHECK_THROWS_AS(format::printf("%d and %d"), std::invalid_argument);
    CHECK_THROWS_AS(format::printf("50 %"), std::invalid_argument);
    CHECK_THROWS_AS(format::printf("%y"), std::invalid_argument);
}

TEST_CASE("enum tables, hex and validators", "[service]") {
    auto t = format::table({{1, "Charger only"}, {4, "Off"}}, "Unknown");
    CHECK(t(Value(1)) == "Charger only");
    CHECK(t(Value(4.0)) == "Off");
    CHECK(t(Value(true)) == "Charger only");
    CHECK(t(Value(2)) == "Unknown");
    CHECK(t(Value(1.5)) == "Unknown");
    CHECK(t(Value("1")) == "Unknown");
    CHECK(format::hex()(Value(45057)) == "0xB001");
    CHECK(format::hex()(Value("x")) == "x");

    auto r = validate::range(0, 100);
    CHECK(r(Value(0)));
    CHECK(r(Value(100.0)));
    CHECK_FALSE(r(Value(100.5)));
    CHECK_FALSE(r(Value(true)));
    CHECK_FALSE(r(Value("50")));
    CHECK_FALSE(r(Value()));
    auto e = validate::one_of({1, 2, 3});
    CHECK(e(Value(2.0)));
    CHECK_FALSE(e(Value(5)));
    CHECK_FALSE(e(Value("2")));
    CHECK_FALSE(e(Value()));
}

TEST_CASE("items: paths are checked, texts follow §2.4, lookups throw ItemNotFound", "[service]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    Service svc(loop, svc_name, daemon.address(), quiet());
    auto& v = svc.add("/Dc/0/Voltage", 12.5, ItemOptions().text("%.2F V"));
    CHECK(v.text() == "12.50 V");
    v.invalidate();
    CHECK(v.text() == "---");
    CHECK(svc.add("/ProductId", 45057).text() == "0xB001");
    CHECK(svc.add("/Temperature", 25.0).text() == "25.0");
    CHECK_THROWS_AS(svc.add("/Dc/0/Voltage", 1), std::invalid_argument);
    CHECK_THROWS_AS(svc.add("/Dc/0", 1), std::invalid_argument);
    CHECK_THROWS_AS(svc.add("/Dc/0/Voltage/Sub", 1), std::invalid_argument);
    CHECK_THROWS_AS(svc.add("Dc", 1), std::invalid_argument);
    CHECK_THROWS_AS(svc.add("/Dc/", 1), std::invalid_argument);
    CHECK_THROWS_AS(svc.add("/Dc//x", 1), std::invalid_argument);
    CHECK_THROWS_AS(svc.add("/", 1), std::invalid_argument);
    CHECK_THROWS_AS(svc.add("/a-b", 1), std::invalid_argument);
    try {
        svc.at("/Nope");
        FAIL("no exception");
    } catch (const ItemNotFound& e) {
        CHECK(e.service() == svc_name);
        CHECK(e.path() == "/Nope");
    }
    auto& d = svc.add("/Limit", 5, ItemOptions().writeable().default_value(10));
    d.reset();
    CHECK(d.value() == Value(10));
    CHECK_THROWS_AS(v.reset(), std::logic_error);
    svc.remove("/ProductId");
    CHECK(svc.find("/ProductId") == nullptr);
    CHECK(svc.paths() == std::vector<std::string>{"/Dc/0/Voltage", "/Limit", "/Temperature"});
    CHECK(svc.remove_tree("/Dc") == 1);
    CHECK(svc.size() == 2);
    // /Dc is no longer a node, so it may be an item now
    CHECK_NOTHROW(svc.add("/Dc", 1));
}

TEST_CASE("local updates: one PropertiesChanged each, one ItemsChanged per batch", "[service]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    Service svc(loop, svc_name, daemon.address(), quiet());
    auto client = Bus::open(loop, daemon.address(), quiet());
    SignalLog log(*client);
    auto& a = svc.add("/A", 1);
    auto& b = svc.add("/B", 2.0);
    svc.add("/C", "x");
    auto t = [&]() -> Task<void> {
        co_await svc.start();
        a.set(2);
        a.set(2.0);  // equal: nothing, and the type stays
        b.set(2);    // equal too
        co_await settle(*client);
        CHECK(log.seen.size() == 1);
        CHECK(a.value().is_int());
        CHECK(b.value().is_double());
        log.seen.clear();
        {
            auto outer = svc.batch();
            a.set(3);
            {
                auto inner = svc.batch();
                b.set(4.5);
                svc.set("/C", "x");  // unchanged: not in the signal
            }
            CHECK(svc.in_batch());
        }
        co_await settle(*client);
        REQUIRE(log.seen.size() == 1);
        CHECK(log.seen[0].member == "ItemsChanged");
        CHECK(log.seen[0].path == "/");
        CHECK(log.seen[0].entries == 2);
        log.seen.clear();
        {
            auto batch = svc.batch();
            a.set(3);
        }
        co_await settle(*client);
        CHECK(log.seen.empty());
    };
    run_until_complete(loop, t());
}

TEST_CASE("remote writes reach the owner as a callback, a stream and per item, and are logged", "[service]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    auto capture = std::make_shared<Capture>();
    Service svc(loop, svc_name, daemon.address(), Logger("svc", capture));
    auto client = Bus::open(loop, daemon.address(), quiet());
    auto& limit = svc.add("/Limit", 50.0,
                           ItemOptions().writeable().type(ValueType::floating).range(0.0, 100.0).text("%.1F A"));
    svc.add("/Other", 0, ItemOptions().writeable());
    std::vector<std::string> observed;
    auto id = svc.on_write([&](const Write& w) { observed.push_back(w.path + "=" + text(w.value)); });
    auto writes = svc.writes();
    auto t = [&]() -> Task<void> {
        co_await svc.start();
        { auto rc = co_await remote_set(*client, "/Limit", Value(60)); CHECK(rc == 0); }
        { auto rc = co_await remote_set(*client, "/Limit", Value(160)); CHECK(rc == 2); }  // above max
        { auto rc = co_await remote_set(*client, "/Limit", Value("abc")); CHECK(rc == 1); }
        { auto rc = co_await remote_set(*client, "/Other", Value(5)); CHECK(rc == 0); }
        CHECK(writes.pending() == 2);
        Write w1 = co_await writes.next();
        CHECK(w1.path == "/Limit");
        CHECK(w1.old_value == Value(50.0));
        CHECK(w1.value.is_double());
        CHECK(w1.value == Value(60.0));
        CHECK(w1.sender == client->unique_name());
        Write w2 = co_await writes.next();
        CHECK(w2.path == "/Other");

        // Awaiting one item: a writer task and a waiting task.
        std::optional<Value> got;
        auto waiter = [&]() -> Task<void> { got = co_await limit.written(); };
        auto body = [&](TaskGroup& g) -> Task<void> {
            g.spawn(waiter(), "waiter");
            co_await sleep_for(10ms);
            auto rc = co_await remote_set(*client, "/Limit", Value(70.5));
            CHECK(rc == 0);
        };
        co_await with_group(body);
        CHECK(got == Value(70.5));
        svc.remove_write_observer(id);
        { auto rc = co_await remote_set(*client, "/Limit", Value(71)); CHECK(rc == 0); }
    };
    run_until_complete(loop, t());
    CHECK(observed == std::vector<std::string>{"/Limit=60.0", "/Other=5", "/Limit=70.5"});
    bool logged = false;
    for (const auto& line : capture->lines)
        if (line.find("/Limit written by") != std::string::npos && line.find("50.0 A -> 60.0 A") != std::string::npos)  // as the text shows it
            logged = true;
    CHECK(logged);
}

TEST_CASE("a write between Item::written() and its co_await is not lost", "[service]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    Service svc(loop, svc_name, daemon.address(), quiet());
    auto client = Bus::open(loop, daemon.address(), quiet());
    auto& item = svc.add("/X", 1, ItemOptions().writeable());
    std::optional<Value> got;
    auto t = [&]() -> Task<void> {
        co_await svc.start();
        auto next = item.written();
        auto rc = co_await remote_set(*client, "/X", Value(7));  // before the co_await
        CHECK(rc == 0);
        auto waited = with_timeout(5s, std::move(next));
        got = co_await waited;
    };
    run_until_complete(loop, t());
    CHECK(got == Value(7));
}

TEST_CASE("waiting for a write to an item that goes away ends with ItemRemoved", "[service]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    Service svc(loop, svc_name, daemon.address(), quiet());
    auto& item = svc.add("/X", 1, ItemOptions().writeable());
    bool removed = false;
    auto waiter = [&]() -> Task<void> {
        try {
            co_await item.written();
        } catch (const ItemRemoved&) {
            removed = true;
        }
    };
    auto body = [&](TaskGroup& g) -> Task<void> {
        g.spawn(waiter(), "waiter");
        co_await sleep_for(5ms);
        svc.remove("/X");
    };
    auto t = [&]() -> Task<void> { co_await with_group(body); };
    run_until_complete(loop, t());
    CHECK(removed);
}

TEST_CASE("a name owned by another connection is a NameTakenError naming name and owner", "[service]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    Service first(loop, svc_name, daemon.address(), quiet());
    Service second(loop, svc_name, daemon.address(), quiet());
    auto t = [&]() -> Task<void> {
        co_await first.start();
        CHECK(first.started());
        bool thrown = false;
        try {
            co_await second.start();
        } catch (const NameTakenError& e) {
            thrown = true;
            CHECK(e.name() == svc_name);
            CHECK_THAT(e.owner(), Catch::StartsWith(first.bus().unique_name() + " (pid "));
            CHECK_THAT(std::string(e.what()), Catch::Contains(svc_name) && Catch::Contains("already owned"));
        }
        CHECK(thrown);
        CHECK_FALSE(second.started());
        co_await first.stop();
        co_await second.start();  // free now
        CHECK(second.started());
    };
    run_until_complete(loop, t());
}

TEST_CASE("an item that reports equal writes tells the owner about a rewrite, the bus sees velib", "[service]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    Service svc(loop, svc_name, daemon.address(), quiet());
    auto client = Bus::open(loop, daemon.address(), quiet());
    SignalLog signals(*client);
    svc.add("/Keep", 0.0, ItemOptions().writeable().type(ValueType::floating).report_equal_writes());
    svc.add("/Plain", 0.0, ItemOptions().writeable().type(ValueType::floating));
    std::vector<Write> seen;
    svc.on_write([&](const Write& w) { seen.push_back(w); });
    auto t = [&]() -> Task<void> {
        co_await svc.start();
        { auto rc = co_await remote_set(*client, "/Keep", Value(100)); CHECK(rc == 0); }
        co_await settle(*client);
        const auto after_change = signals.seen.size();
        { auto rc = co_await remote_set(*client, "/Keep", Value(100)); CHECK(rc == 0); }
        { auto rc = co_await remote_set(*client, "/Plain", Value(0)); CHECK(rc == 0); }
        co_await settle(*client);
        CHECK(signals.seen.size() == after_change);  // an equal write sends nothing
    };
    run_until_complete(loop, t());
    REQUIRE(seen.size() == 2);
    CHECK(seen[0].changed);
    CHECK(seen[0].value == Value(100.0));
    CHECK_FALSE(seen[1].changed);
    CHECK(seen[1].path == "/Keep");
    CHECK(seen[1].old_value == seen[1].value);
    CHECK(svc.at("/Keep").value().is_double());  // the stored type is kept
}

TEST_CASE("stopping invalidates every value in one ItemsChanged before the name goes", "[service]") {
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    auto client = Bus::open(loop, daemon.address(), quiet());
    SignalLog log(*client);
    std::vector<std::string> order;
    auto owner_slot = detail::connection(*client).addMatch(
        "type='signal',interface='org.freedesktop.DBus',member='NameOwnerChanged'", [&](sdbus::Message& m) {
            std::string name, old_owner, new_owner;
            m >> name >> old_owner >> new_owner;
            if (name == svc_name && new_owner.empty()) order.push_back("name released");
        });
    auto items_slot = detail::connection(*client).addMatch(
        "type='signal',interface='com.victronenergy.BusItem',member='ItemsChanged'",
        [&](sdbus::Message&) { order.push_back("ItemsChanged"); });
    auto t = [&]() -> Task<void> {
        {
            Service svc(loop, svc_name, daemon.address(), quiet());
            svc.add("/A", 1);
            svc.add("/B/C", "x");
            svc.add("/DeviceInstance", 7);
            svc.add("/ProductName", "unit");
            svc.add("/Connected", 1);
            co_await svc.start();
            co_await settle(*client);
            log.seen.clear();
            co_await svc.stop();
            CHECK(svc.at("/A").value().is_invalid());
            CHECK(svc.at("/B/C").value().is_invalid());
            CHECK(svc.at("/Connected").value() == Value(0));
            CHECK(svc.at("/DeviceInstance").value() == Value(7));
            CHECK(svc.at("/ProductName").value() == Value("unit"));
        }
        co_await sleep_for(100ms);
        REQUIRE(log.seen.size() == 1);
        CHECK(log.seen[0].member == "ItemsChanged");
        CHECK(log.seen[0].entries == 3);
        CHECK(order == std::vector<std::string>{"ItemsChanged", "name released"});

        // velib's way (the conformance service, the settings service): nothing is sent.
        log.seen.clear();
        {
            Service svc(loop, svc_name, daemon.address(), quiet());
            svc.add("/A", 1);
            svc.set_invalidate_on_stop(false);
            co_await svc.start();
            co_await settle(*client);
            log.seen.clear();
            co_await svc.stop();
            CHECK(svc.at("/A").value() == Value(1));
        }
        co_await sleep_for(100ms);
        CHECK(log.seen.empty());
    };
    run_until_complete(loop, t());
}
