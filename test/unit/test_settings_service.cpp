// The settings service without D-Bus (conversions, adds, instance allocation,
// the file) and its debounced saving on a private bus.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "moat/settings_service.hpp"
#include "private_daemon.hpp"

using namespace moat;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

Logger quiet() { return Logger("test", null_sink()); }

struct Capture : LogSink {
    std::vector<std::string> lines;
    void write(LogLevel, std::string_view line) override { lines.emplace_back(line); }
};

/// A fresh temporary directory, removed at the end.
struct TempDir {
    fs::path path;
    TempDir() {
        std::string tmpl = (fs::temp_directory_path() / "moat-settings-XXXXXX").string();
        if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    std::string file(const char* name) const { return (path / name).string(); }
};

std::string read(const std::string& file) {
    std::ifstream in(file);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

void write(const std::string& file, const std::string& text) { std::ofstream(file) << text; }

const std::string dev1 = "/Settings/Devices/bms_1/ClassAndVrmInstance";
const std::string dev2 = "/Settings/Devices/bms_2/ClassAndVrmInstance";
const std::string dev3 = "/Settings/Devices/meter_1/ClassAndVrmInstance";

} // namespace

TEST_CASE("settings: SetValue conversions follow Python int() float() and str()", "[settings]") {
    using T = SettingType;
    CHECK(*convert_setting(Value(3.7), T::integer) == Value(3));
    CHECK(convert_setting(Value(3.7), T::integer)->is_int());
    CHECK(*convert_setting(Value(-3.7), T::integer) == Value(-3));
    CHECK(*convert_setting(Value("4"), T::integer) == Value(4));
    CHECK(*convert_setting(Value(" 12 "), T::integer) == Value(12));
    CHECK_FALSE(convert_setting(Value("2.5"), T::integer));
    CHECK_FALSE(convert_setting(Value("x"), T::integer));
    CHECK(*convert_setting(Value(true), T::integer) == Value(1));
    CHECK(convert_setting(Value(3), T::floating)->is_double());
    CHECK(*convert_setting(Value(3), T::floating) == Value(3.0));
    CHECK(*convert_setting(Value("1e3"), T::floating) == Value(1000.0));
    CHECK_FALSE(convert_setting(Value("abc"), T::floating));
    CHECK(*convert_setting(Value(3), T::string) == Value("3"));
    CHECK(*convert_setting(Value(2.5), T::string) == Value("2.5"));
    CHECK(*convert_setting(Value(5000000000LL), T::integer) == Value(5000000000LL));
    // Invalid never converts: SetValue with an empty array is -1 (§11.3).
    for (auto t : {T::integer, T::floating, T::string}) CHECK_FALSE(convert_setting(Value(), t));
    CHECK_FALSE(convert_setting(Value::make_list({1, 2}), T::integer));
    CHECK(setting_type("i") == T::integer);
    CHECK(setting_type("f") == T::floating);
    CHECK(setting_type("s") == T::string);
    CHECK_FALSE(setting_type("b"));
    CHECK_FALSE(setting_type(""));
}

TEST_CASE("settings: adds - limits, defaults, groups, types", "[settings]") {
    SettingsMap m;
    using T = SettingType;
    auto r = add_setting(m, "/Settings/A/Int", Value(5), T::integer, Value(0), Value(10), false);
    CHECK(r.code == 0);
    CHECK(r.created);
    CHECK(m.at("/Settings/A/Int").min == Value(0));
    CHECK(m.at("/Settings/A/Int").max == Value(10));
    // min = max = 0: no limits.
    CHECK(add_setting(m, "/Settings/A/Free", Value(-50), T::integer, Value(0), Value(0), false).code == 0);
    CHECK_FALSE(m.at("/Settings/A/Free").min);
    // Limits are converted to the setting's type.
    CHECK(add_setting(m, "/Settings/A/Float", Value(1), T::floating, Value(0), Value(100), false).code == 0);
    CHECK(m.at("/Settings/A/Float").value.is_double());
    CHECK(m.at("/Settings/A/Float").max->is_double());
    CHECK(add_setting(m, "/Settings/A/Out", Value(11), T::integer, Value(0), Value(10), false).code ==
          settings_code::default_out_of_range);
    CHECK(add_setting(m, "/Settings/A/Bad", Value("x"), T::integer, Value(), Value(), false).code ==
          settings_code::invalid_default);
    CHECK(add_setting(m, "/Settings/A/Int", Value("5"), T::string, Value(), Value(), false).code ==
          settings_code::type_differ);
    CHECK(add_setting(m, "/Settings/A", Value(1), T::integer, Value(), Value(), false).code == settings_code::is_group);
    CHECK(add_setting(m, "/Settings/A/Int/Sub", Value(1), T::integer, Value(), Value(), false).code ==
          settings_code::invalid_path);
    CHECK_FALSE(m.count("/Settings/A/Out"));

    // Adding again keeps the value and takes the new attributes.
    m.at("/Settings/A/Int").value = Value(7);
    r = add_setting(m, "/Settings/A/Int", Value(5), T::integer, Value(0), Value(10), false);
    CHECK((r.code == 0 && !r.created && !r.changed));
    r = add_setting(m, "/Settings/A/Int", Value(6), T::integer, Value(0), Value(20), true);
    CHECK((r.code == 0 && !r.created && r.changed));
    CHECK(m.at("/Settings/A/Int").value == Value(7));
    CHECK(m.at("/Settings/A/Int").default_value == Value(6));
    CHECK(m.at("/Settings/A/Int").silent);

    // Writes.
    CHECK(decide_write(m, "/Settings/A/Int", Value(3.7)).store == Value(3));
    CHECK(decide_write(m, "/Settings/A/Int", Value(21)).code == -1);
    CHECK_FALSE(decide_write(m, "/Settings/A/Int", Value(21)).store);
    CHECK(decide_write(m, "/Settings/A/Int", Value()).code == -1);
    CHECK(decide_write(m, "/Settings/A/Int", Value("x")).code == -1);
    CHECK(decide_write(m, "/Settings/A/Free", Value(-1000000)).code == 0);
    CHECK(decide_write(m, "/Settings/Nope", Value(1)).code == -1);
}

TEST_CASE("settings: device instances - lowest free per class, writes to a taken one move on", "[settings]") {
    CHECK(parse_class_instance("battery:1") == ClassInstance{"battery", 1});
    CHECK(parse_class_instance("grid:40") == ClassInstance{"grid", 40});
    CHECK_FALSE(parse_class_instance("battery"));
    CHECK_FALSE(parse_class_instance(":1"));
    CHECK_FALSE(parse_class_instance("battery:x"));
    CHECK_FALSE(parse_class_instance("battery:1.5"));
    CHECK(is_class_instance_path(dev1));
    CHECK_FALSE(is_class_instance_path("/Settings/Devices/ClassAndVrmInstance"));
    CHECK_FALSE(is_class_instance_path("/Settings/Devices/a/b/ClassAndVrmInstance"));

    SettingsMap m;
    using T = SettingType;
    CHECK(add_setting(m, dev1, Value("battery:1"), T::string, Value(), Value(), false).code == 0);
    CHECK(add_setting(m, dev2, Value("battery:1"), T::string, Value(), Value(), false).code == 0);
    CHECK(add_setting(m, dev3, Value("battery:1"), T::string, Value(), Value(), false).code == 0);
    CHECK(m.at(dev1).value == Value("battery:1"));
    CHECK(m.at(dev2).value == Value("battery:2"));
    CHECK(m.at(dev2).default_value == Value("battery:1"));
    CHECK(m.at(dev3).value == Value("battery:3"));
    // An existing entry is returned unchanged.
    CHECK(add_setting(m, dev2, Value("battery:1"), T::string, Value(), Value(), false).code == 0);
    CHECK(m.at(dev2).value == Value("battery:2"));
    // Instances are per class.
    CHECK(add_setting(m, "/Settings/Devices/em_1/ClassAndVrmInstance", Value("grid:40"), T::string, Value(), Value(),
                      false).code == 0);
    CHECK(m.at("/Settings/Devices/em_1/ClassAndVrmInstance").value == Value("grid:40"));
    CHECK(add_setting(m, "/Settings/Devices/em_2/ClassAndVrmInstance", Value("grid"), T::string, Value(), Value(),
                      false).code == settings_code::invalid_default);
    CHECK(add_setting(m, "/Settings/Devices/em_3/ClassAndVrmInstance", Value(1), T::integer, Value(), Value(),
                      false).code == settings_code::invalid_default);

    // A write to a combination in use stores the next free one (§11.4).
    CHECK(decide_write(m, dev3, Value("battery:1")).store == Value("battery:3"));  // its own is free for it
    CHECK(decide_write(m, dev1, Value("battery:2")).store == Value("battery:4"));
    CHECK(decide_write(m, dev3, Value("battery:3")).store == Value("battery:3"));
    CHECK(decide_write(m, dev3, Value("battery:7")).store == Value("battery:7"));
    CHECK(decide_write(m, dev3, Value("grid:40")).store == Value("grid:41"));
    CHECK(decide_write(m, dev3, Value("garbage")).code == -1);
    CHECK(decide_write(m, dev3, Value()).code == -1);
}

TEST_CASE("settings: the file round-trips every type", "[settings]") {
    TempDir dir;
    const std::string file = dir.file("settings.toml");
    SettingsMap m;
    using T = SettingType;
    REQUIRE(add_setting(m, "/Settings/F/Tenth", Value(0.1), T::floating, Value(), Value(), false).code == 0);
    REQUIRE(add_setting(m, "/Settings/F/Small", Value(1e-05), T::floating, Value(-1.5), Value(1e16), false).code == 0);
    REQUIRE(add_setting(m, "/Settings/F/Whole", Value(25.0), T::floating, Value(), Value(), true).code == 0);
    REQUIRE(add_setting(m, "/Settings/I/Big", Value(5000000000LL), T::integer, Value(), Value(), false).code == 0);
    REQUIRE(add_setting(m, "/Settings/S/Odd", Value("a \"quoted\"\\ line\nand\ttab é"), T::string, Value(), Value(),
                        false).code == 0);
    REQUIRE(add_setting(m, "/Settings/S/Empty", Value(""), T::string, Value(), Value(), false).code == 0);
    m.at("/Settings/F/Whole").value = Value(0.6666666666666666);
    save_settings_file(file, m);
    CHECK_FALSE(fs::exists(file + ".tmp"));
    auto loaded = load_settings_file(file);
    CHECK(loaded.kept_aside.empty());
    REQUIRE(loaded.settings.size() == m.size());
    for (const auto& [path, s] : m) {
        INFO(path);
        const Setting& l = loaded.settings.at(path);
        CHECK(l.type == s.type);
        CHECK(l.value == s.value);
        CHECK(l.value.kind() == s.value.kind());
        CHECK(l.default_value == s.default_value);
        CHECK(l.min == s.min);
        CHECK(l.max == s.max);
        CHECK(l.silent == s.silent);
    }
    CHECK(read(file).find("format = 1") != std::string::npos);
    // A missing file is no settings and no problem.
    auto none = load_settings_file(dir.file("absent.toml"));
    CHECK(none.settings.empty());
    CHECK(none.kept_aside.empty());
}

TEST_CASE("settings: a corrupt file is reported and kept aside, never replaced", "[settings]") {
    TempDir dir;
    const std::string file = dir.file("settings.toml");
    const auto when = std::chrono::system_clock::from_time_t(1700000000);  // 2023-11-14 22:13:20 UTC
    struct Case {
        const char* what;
        std::string text;
        const char* reason;
    };
    const std::vector<Case> cases = {
        {"not TOML", "format = 1\n[settings\n", "line 2"},
        {"no format", "[settings.\"/Settings/A\"]\ntype = \"i\"\nvalue = 1\ndefault = 1\n", "format"},
        {"wrong value type", "format = 1\n[settings.\"/Settings/A\"]\ntype = \"i\"\nvalue = \"x\"\ndefault = 1\n",
         "line 4"},
        {"unknown type", "format = 1\n[settings.\"/Settings/A\"]\ntype = \"b\"\nvalue = true\ndefault = true\n", "type"},
        {"bad path", "format = 1\n[settings.\"/Other/A\"]\ntype = \"i\"\nvalue = 1\ndefault = 1\n", "setting path"},
        {"a setting below another",
         "format = 1\n[settings.\"/Settings/A\"]\ntype = \"i\"\nvalue = 1\ndefault = 1\n"
         "[settings.\"/Settings/A/B\"]\ntype = \"i\"\nvalue = 1\ndefault = 1\n",
         "below"},
        {"truncated", "format = 1\n[settings.\"/Settings/A\"]\ntype = \"i\"\nval", "line 4"},
    };
    for (const auto& c : cases) {
        SECTION(c.what) {
            write(file, c.text);
            auto loaded = load_settings_file(file, when);
            CHECK(loaded.settings.empty());
            CHECK(loaded.kept_aside == file + ".corrupt-20231114T221320Z");
            CHECK_THAT(loaded.problem, Catch::Contains(c.reason));
            CHECK_FALSE(fs::exists(file));
            CHECK(read(loaded.kept_aside) == c.text);
            // A second corrupt file in the same second does not overwrite the first.
            write(file, c.text);
            auto again = load_settings_file(file, when);
            CHECK(again.kept_aside == file + ".corrupt-20231114T221320Z-1");
            CHECK(fs::exists(loaded.kept_aside));
        }
    }
}

TEST_CASE("settings: the service writes 2 s after a change, once, and at the end", "[settings]") {
    TempDir dir;
    const std::string file = dir.file("settings.toml");
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    VirtualClock clock(loop);
    loop.set_clock(clock);
    {
        SettingsService svc(loop, daemon.address(), file, quiet());
        CHECK(svc.add("/Settings/A/X", Value(1), SettingType::integer) == 0);
        CHECK(svc.add("/Settings/A/Y", Value("y"), SettingType::string) == 0);
        CHECK(svc.add("/Settings", Value(1), SettingType::integer) == settings_code::not_in_settings);
        CHECK(svc.add("/Settings/Devices", Value(1), SettingType::integer) == settings_code::is_group);
        CHECK(svc.add("/Settings/_A", Value(1), SettingType::integer) == settings_code::underscore_prefix);
        CHECK(svc.add("/Other/A", Value(1), SettingType::integer) == settings_code::not_in_settings);
        CHECK(svc.unsaved());
        clock.advance(1900ms);
        CHECK(svc.saves() == 0);
        CHECK(svc.set("/Settings/A/X", Value(2)) == 0);
        clock.advance(200ms);
        CHECK(svc.saves() == 1);
        CHECK_FALSE(svc.unsaved());
        CHECK(load_settings_file(file).settings.at("/Settings/A/X").value == Value(2));
        CHECK(svc.set("/Settings/A/X", Value(2)) == 0);  // equal: nothing to save
        CHECK_FALSE(svc.unsaved());
        CHECK(svc.set("/Settings/A/X", Value(3)) == 0);
        CHECK(svc.set("/Settings/A/X", Value()) == -1);
        CHECK(svc.value("/Settings/A/X") == Value(3));
    }  // destroyed with an unsaved change: written now
    CHECK(load_settings_file(file).settings.at("/Settings/A/X").value == Value(3));

    SECTION("a corrupt file is logged with its name and reason and the service starts empty") {
        write(file, "format = 1\n[settings.\"/Settings/A\"]\ntype = 5\n");
        auto sink = std::make_shared<Capture>();
        SettingsService svc(loop, daemon.address(), file, Logger("settings", sink));
        CHECK(svc.settings().empty());
        CHECK(fs::exists(svc.kept_aside()));
        CHECK_FALSE(fs::exists(file));
        REQUIRE_FALSE(sink->lines.empty());
        CHECK_THAT(sink->lines[0], Catch::Contains(file) && Catch::Contains("corrupt") && Catch::Contains("line 3") &&
                                       Catch::Contains(svc.kept_aside()));
    }
}

TEST_CASE("settings: an empty file name keeps the settings in memory only", "[settings]") {
    TempDir dir;
    PrivateDaemon daemon(MOAT_TEST_DIR "/fixtures/dbus-test.conf");
    Loop loop;
    VirtualClock clock(loop);
    loop.set_clock(clock);
    auto sink = std::make_shared<Capture>();
    {
        SettingsService svc(loop, daemon.address(), "", Logger("settings", sink));
        CHECK(svc.settings().empty());
        CHECK(svc.add("/Settings/A/X", Value(1), SettingType::integer) == 0);
        CHECK(svc.set("/Settings/A/X", Value(2)) == 0);
        CHECK(svc.value("/Settings/A/X") == Value(2));
        CHECK_FALSE(svc.unsaved());
        clock.advance(3s);
        CHECK(svc.saves() == 0);
    }
    REQUIRE_FALSE(sink->lines.empty());
    CHECK_THAT(sink->lines[0], Catch::Contains("in memory only"));
    for (const auto& l : sink->lines) CHECK_THAT(l, !Catch::Contains("cannot save"));
}
