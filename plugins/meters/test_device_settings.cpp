// DeviceSettingsStore against moat::SettingsService on a private
// dbus-daemon, both on one loop: allocation, role changes, the legacy move
// and the change watch (meters.md §5, §6; venus-dbus.md §11.4).
#include "device_settings.hpp"

#include <moat/settings_service.hpp>

#include "private_daemon.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>

using namespace moat;
using namespace moat::meters;
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
    DeviceSettingsStore store{settings, *bus, quiet()};
    std::optional<SettingsService> service;

    Fixture()
    {
        std::string tmpl = (fs::temp_directory_path() / "moat-meter-settings-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
    }
    ~Fixture()
    {
        service.reset();
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    Task<void> start_service()
    {
        service.emplace(loop, daemon.address(), (dir / "settings.toml").string(), quiet());
        co_await service->start();
    }
    bool has(const std::string& path) const { return service->settings().count(path) > 0; }
};

template <class Body>
void run(Loop& loop, Body& body, Duration limit = 20s)
{
    auto task = with_timeout(limit, body());
    run_until_complete(loop, std::move(task));
}

} // namespace

TEST_CASE("meter settings: instances from 40 per class, name and position where the role has one", "[settings]")
{
    Fixture f;
    auto body = [&]() -> Task<void> {
        co_await f.start_service();
        auto a = f.store.open("cg_1", std::nullopt, "grid");
        DeviceSettings first = co_await a;
        auto b = f.store.open("cg_2", std::nullopt, "grid");
        DeviceSettings second = co_await b;
        CHECK(first.role == "grid");
        CHECK(first.instance == 40);
        CHECK(second.instance == 41);
        CHECK(f.service->value("/Settings/Devices/cg_1/ClassAndVrmInstance") == Value("grid:40"));
        CHECK(f.service->value("/Settings/Devices/cg_2/CustomName") == Value(""));
        CHECK_FALSE(f.has("/Settings/Devices/cg_1/Position"));
        auto pv = f.store.open("cg_3", std::nullopt, "pvinverter");
        DeviceSettings third = co_await pv;
        CHECK(third.instance == 40);  // instances are per class
        CHECK(f.service->value("/Settings/Devices/cg_3/Position") == Value(0));

        // Opening again finds what is stored.
        auto named = f.store.set_custom_name("cg_1", "Garage");
        CHECK(co_await named == 0);
        auto again = f.store.open("cg_1", std::nullopt, "acload");
        DeviceSettings reopened = co_await again;
        CHECK(reopened.role == "grid");
        CHECK(reopened.instance == 40);
        CHECK(reopened.custom_name == "Garage");

        // A role change keeps the instance where it is free and adds Position.
        auto role = f.store.set_role("cg_2", "acload");
        DeviceSettings moved = co_await role;
        CHECK(moved.role == "acload");
        CHECK(moved.instance == 41);
        CHECK(f.service->value("/Settings/Devices/cg_2/ClassAndVrmInstance") == Value("acload:41"));
        CHECK(f.service->value("/Settings/Devices/cg_2/Position") == Value(0));
        auto pos = f.store.set_position("cg_2", 2);
        CHECK(co_await pos == 0);
        auto bad = f.store.set_position("cg_2", 3);
        CHECK(co_await bad == -1);
        CHECK(f.store.current("cg_2").position == 2);
        // Into a class where the instance is taken: the next free one.
        auto role2 = f.store.set_role("cg_2", "grid");
        DeviceSettings back = co_await role2;
        CHECK(back.role == "grid");
        CHECK(back.instance == 41);
        auto role3 = f.store.set_role("cg_3", "grid");
        DeviceSettings taken = co_await role3;
        CHECK(taken.instance == 42);
        co_await f.service->stop();
    };
    run(f.loop, body);
}

TEST_CASE("meter settings: the legacy ident's settings are moved, instance included", "[settings]")
{
    Fixture f;
    auto body = [&]() -> Task<void> {
        co_await f.start_service();
        const std::string old = "/Settings/Devices/cg_1065353216/";
        CHECK(f.service->add(old + "ClassAndVrmInstance", Value("pvinverter:40"), SettingType::string) == 0);
        CHECK(f.service->add(old + "CustomName", Value("Roof"), SettingType::string) == 0);
        CHECK(f.service->add(old + "Position", Value(1), SettingType::integer, Value(0), Value(2)) == 0);
        auto a = f.store.open("cg_99", std::string("cg_1065353216"), "grid");
        DeviceSettings s = co_await a;
        CHECK(s.role == "pvinverter");
        CHECK(s.instance == 40);
        CHECK(s.custom_name == "Roof");
        CHECK(s.position == 1);
        CHECK(f.service->value("/Settings/Devices/cg_99/ClassAndVrmInstance") == Value("pvinverter:40"));
        CHECK_FALSE(f.has(old + "ClassAndVrmInstance"));
        CHECK_FALSE(f.has(old + "CustomName"));

        // A device that has settings already is left alone, legacy or not.
        CHECK(f.service->add(old + "ClassAndVrmInstance", Value("genset:40"), SettingType::string) == 0);
        auto b = f.store.open("cg_99", std::string("cg_1065353216"), "grid");
        DeviceSettings kept = co_await b;
        CHECK(kept.role == "pvinverter");
        CHECK(f.has(old + "ClassAndVrmInstance"));
        co_await f.service->stop();
    };
    run(f.loop, body);
}

TEST_CASE("meter settings: open waits for a late service, changes by others are watched", "[settings]")
{
    Fixture f;
    auto body = [&]() -> Task<void> {
        DeviceSettings s;
        bool opened = false;
        auto open = [&]() -> Task<void> {
            auto o = f.store.open("cg_7", std::nullopt, "grid");
            s = co_await o;
            opened = true;
        };
        auto group_body = [&](TaskGroup& g) -> Task<void> {
            g.spawn(open(), "open");
            co_await sleep_for(2500ms);  // longer than the first wait (2 s)
            CHECK_FALSE(opened);
            co_await f.start_service();
        };
        co_await with_group(group_body);
        REQUIRE(opened);
        CHECK(s.instance == 40);

        int changes = 0;
        auto watch = f.store.watch("cg_7", [&] { ++changes; });
        CHECK(f.service->set("/Settings/Devices/cg_7/ClassAndVrmInstance", Value("grid:45")) == 0);
        co_await sleep_for(100ms);
        CHECK(changes == 1);
        CHECK(f.store.current("cg_7").instance == 45);
        CHECK(f.service->set("/Settings/Devices/cg_7/CustomName", Value("Shed")) == 0);
        co_await sleep_for(100ms);
        CHECK(changes == 2);
        CHECK(f.store.current("cg_7").custom_name == "Shed");
        CHECK(f.service->set("/Settings/Devices/cg_7/ClassAndVrmInstance", Value("acload:45")) == 0);
        co_await sleep_for(100ms);
        CHECK(changes == 3);
        CHECK(f.store.current("cg_7").role == "acload");
        watch.subscriptions.clear();
        CHECK(f.service->set("/Settings/Devices/cg_7/CustomName", Value("Barn")) == 0);
        co_await sleep_for(100ms);
        CHECK(changes == 3);
        co_await f.service->stop();
    };
    run(f.loop, body);
}
