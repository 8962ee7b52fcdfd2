// moat::Settings (the client) against moat::SettingsService on a private
// dbus-daemon, both driven by one loop (they talk asynchronously).
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>

#include "moat/settings.hpp"
#include "moat/settings_service.hpp"
#include "private_daemon.hpp"

using namespace moat;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

Logger quiet() { return Logger("test", null_sink()); }

struct Fixture {
    fs::path dir;
    PrivateDaemon daemon{MOAT_TEST_DIR "/fixtures/dbus-test.conf"};
    Loop loop;
    std::unique_ptr<Bus> bus = Bus::open(loop, daemon.address(), quiet());
    Monitor monitor{*bus, quiet()};
    Settings settings{*bus, monitor, quiet()};
    std::optional<SettingsService> service;

    Fixture() {
        std::string tmpl = (fs::temp_directory_path() / "moat-settings-client-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
    }
    ~Fixture() {
        service.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    Task<void> start_service(const char* file = "settings.toml") {
        service.emplace(loop, daemon.address(), (dir / file).string(), quiet());
        co_await service->start();
    }
};

template <class Body>
void run(Loop& loop, Body& body, Duration limit = 20s) {
    auto task = with_timeout(limit, body());
    run_until_complete(loop, std::move(task));
}

const std::string limit = "/Settings/Demo/Limit";
const std::string label = "/Settings/Demo/Label";
const std::string count = "/Settings/Demo/Count";

} // namespace

TEST_CASE("settings client: waits, adds, reads, writes and observes", "[settings]") {
    Fixture f;
    auto body = [&]() -> Task<void> {
        auto absent = f.settings.wait(300ms);
        CHECK_FALSE(co_await absent);
        co_await f.start_service();
        auto present = f.settings.wait(5s);
        CHECK(co_await present);

        std::vector<SettingSpec> specs{{limit, 10.0, 0.0, 100.0}, {label, "demo"}, {count, 3, 0, 0, true}};
        co_await f.settings.add(specs);
        CHECK(f.settings.value(limit) == Value(10.0));
        CHECK(f.settings.value(limit).is_double());
        CHECK(f.settings.value(label) == Value("demo"));
        CHECK(f.settings.value(count) == Value(3));
        CHECK(f.service->settings().at(count).silent);
        CHECK_FALSE(f.service->settings().at(count).min);  // 0, 0: no limits

        std::vector<std::tuple<std::string, Value, Value>> seen;
        auto sub = f.settings.on_change("", [&](const std::string& p, const Value& o, const Value& n) {
            seen.emplace_back(p, o, n);
        });
        int rc = co_await f.settings.set(limit, 20);  // an integer into a float setting
        CHECK(rc == 0);
        CHECK(f.settings.value(limit).is_double());
        CHECK(f.settings.value(limit) == Value(20.0));
        CHECK(co_await f.settings.set(limit, 101.0) == -1);
        CHECK(co_await f.settings.set(limit, "abc") == -1);
        CHECK(f.settings.value(limit) == Value(20.0));
        co_await sleep_for(50ms);
        REQUIRE(seen.size() == 1);
        CHECK(std::get<0>(seen[0]) == limit);
        CHECK(std::get<1>(seen[0]) == Value(10.0));
        CHECK(std::get<2>(seen[0]) == Value(20.0));

        // A change made by somebody else: the callback and the awaitable.
        auto next = f.settings.wait_for_change(label, 5s);
        f.service->set(label, "other");
        auto changed = co_await next;
        REQUIRE(changed);
        CHECK(*changed == Value("other"));
        CHECK(f.settings.value(label) == Value("other"));
        auto none = f.settings.wait_for_change(label, 100ms);
        CHECK_FALSE(co_await none);

        // A refused add names the path and the code.
        bool thrown = false;
        try {
            std::vector<SettingSpec> bad{{"/Settings/Demo/Bad", 50, 0, 10}};
            co_await f.settings.add(bad);
        } catch (const SettingsError& e) {
            thrown = true;
            CHECK(e.path() == "/Settings/Demo/Bad");
            CHECK(e.code() == settings_code::default_out_of_range);
        }
        CHECK(thrown);
        co_await f.service->stop();
    };
    run(f.loop, body);
}

TEST_CASE("settings client: device instances are allocated and followed", "[settings]") {
    Fixture f;
    auto body = [&]() -> Task<void> {
        co_await f.start_service();
        auto a = f.settings.device_instance("bms_1", "battery", 1);
        ClassInstance first = co_await a;
        auto b = f.settings.device_instance("bms_2", "battery", 1);
        ClassInstance second = co_await b;
        CHECK(first == ClassInstance{"battery", 1});
        CHECK(second == ClassInstance{"battery", 2});
        auto again = f.settings.device_instance("bms_1", "battery", 1);
        ClassInstance third = co_await again;
        CHECK(third == ClassInstance{"battery", 1});

        auto c = f.settings.device_instance("bms_3", "battery", 1);
        ClassInstance fourth = co_await c;
        CHECK(fourth == ClassInstance{"battery", 3});

        std::vector<ClassInstance> changes;
        auto sub = f.settings.on_device_instance("bms_2", [&](const ClassInstance& ci) { changes.push_back(ci); });
        // The user picks a taken instance: the service stores the next free one.
        CHECK(f.service->set(class_instance_path("bms_2"), "battery:3") == 0);
        CHECK(f.service->value(class_instance_path("bms_2")) == Value("battery:4"));
        // A class change (role change, §8.5).
        CHECK(f.service->set(class_instance_path("bms_2"), "grid:40") == 0);
        co_await sleep_for(100ms);
        REQUIRE(changes.size() == 2);
        CHECK(changes[0] == ClassInstance{"battery", 4});
        CHECK(changes[1] == ClassInstance{"grid", 40});
        co_await f.service->stop();
    };
    run(f.loop, body);
}

TEST_CASE("settings client: survives the settings service restarting", "[settings]") {
    Fixture f;
    auto body = [&]() -> Task<void> {
        co_await f.start_service();
        std::vector<SettingSpec> specs{{limit, 10.0, 0.0, 100.0}};
        co_await f.settings.add(specs);
        CHECK(co_await f.settings.set(limit, 42.0) == 0);
        std::vector<Value> seen;
        auto sub = f.settings.on_change(limit, [&](const std::string&, const Value&, const Value& n) { seen.push_back(n); });

        // Gone: the last value stays readable, observers hear nothing.
        co_await f.service->stop();
        f.service.reset();
        co_await sleep_for(200ms);
        CHECK(f.settings.value(limit) == Value(42.0));
        CHECK(seen.empty());

        // Back with the same file: the value was kept on disk; no change to announce.
        co_await f.start_service();
        auto back = f.settings.wait(5s);
        CHECK(co_await back);
        co_await sleep_for(200ms);
        CHECK(f.settings.value(limit) == Value(42.0));
        CHECK(seen.empty());

        // Back with an empty file: the client adds its settings again and announces the default.
        co_await f.service->stop();
        f.service.reset();
        co_await sleep_for(200ms);
        auto next = f.settings.wait_for_change(limit, 5s);
        co_await f.start_service("fresh.toml");
        auto v = co_await next;
        REQUIRE(v);
        CHECK(*v == Value(10.0));
        CHECK(f.service->value(limit) == Value(10.0));
        CHECK(f.settings.value(limit) == Value(10.0));
        REQUIRE(seen.size() == 1);
        CHECK(seen[0] == Value(10.0));
        co_await f.service->stop();
    };
    run(f.loop, body);
}
