#include <catch2/catch.hpp>

#include "config_check.hpp"
#include "config_file.hpp"
#include "config_toml.hpp"

#include <filesystem>
#include <fstream>

using namespace moat;

namespace {

const ConfigKey keys[] = {
    {"port", KeyType::integer, "502", "TCP port", 1, 65535},
    {"gain", KeyType::number, "1.0", "factor", 0.0, 10.0},
    {"name", KeyType::string, nullptr, "required name"},
    {"parity", KeyType::string, "\"none\"", "parity", -no_limit, no_limit, "none|even|odd"},
    {"ids", KeyType::string_list, "[]", "ids"},
    {"on", KeyType::boolean, "true", "switch"},
};

std::shared_ptr<const toml::table> parse(std::string_view text) {
    return std::make_shared<const toml::table>(toml::parse(text, std::string_view("test.toml")));
}

std::string error_of(std::string_view text) {
    auto t = parse(text);
    try {
        validate_config("test.toml", "meter", t, *t->get("meter")->as_table(), keys);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

} // namespace

TEST_CASE("validation fills defaults and reads typed values", "[config]") {
    auto t = parse("[meter]\nname = \"grid\"\ngain = 2\nids = [\"a\", \"b\"]\n");
    Config c = validate_config("test.toml", "meter", t, *t->get("meter")->as_table(), keys);
    CHECK(c.get_int("port") == 502);
    CHECK(c.get_number("gain") == 2.0);  // an integer is accepted for a number
    CHECK(c.get_string("name") == "grid");
    CHECK(c.get_string("parity") == "none");
    CHECK(c.get_strings("ids") == std::vector<std::string>{"a", "b"});
    CHECK(c.get_bool("on"));
    CHECK(c.where("gain") == "test.toml:3: [meter] key 'gain'");
    CHECK_THROWS_WITH(c.fail("gain", "too loud"), "test.toml:3: [meter] key 'gain': too loud");
    CHECK_THROWS_AS(c.get_int("undeclared"), std::logic_error);
}

TEST_CASE("validation errors name file, line, instance and key", "[config]") {
    CHECK(error_of("[meter]\nname = \"x\"\nprot = 5\n") ==
          "test.toml:3: [meter] key 'prot': unknown key (this plugin knows: port, gain, name, parity, ids, on)");
    CHECK(error_of("[meter]\nname = \"x\"\n\nport = \"502\"\n") ==
          "test.toml:4: [meter] key 'port': expected integer, got a string");
    CHECK(error_of("[meter]\nname = \"x\"\nport = 70000\n") ==
          "test.toml:3: [meter] key 'port': 70000 is out of range [1, 65535]");
    CHECK(error_of("[meter]\nname = \"x\"\ngain = -0.5\n") ==
          "test.toml:3: [meter] key 'gain': -0.5 is out of range [0, 10]");
    CHECK(error_of("[meter]\nname = \"x\"\nparity = \"mark\"\n") ==
          "test.toml:3: [meter] key 'parity': 'mark' is not one of none|even|odd");
    CHECK(error_of("[meter]\nport = 1\n") == "test.toml:1: [meter] key 'name': required key is missing");
    CHECK(error_of("[meter]\nname = \"x\"\nids = [1, 2]\n") ==
          "test.toml:3: [meter] key 'ids': expected list of strings, got an array");
    CHECK(error_of("[meter]\nname = \"x\"\non = 1\n") == "test.toml:3: [meter] key 'on': expected boolean, got an integer");
}

TEST_CASE("validation reports every problem of a table, one per line", "[config]") {
    CHECK(error_of("[meter]\nprot = 5\nport = 0\nparity = \"mark\"\n") ==
          "test.toml:2: [meter] key 'prot': unknown key (this plugin knows: port, gain, name, parity, ids, on)\n"
          "test.toml:3: [meter] key 'port': 0 is out of range [1, 65535]\n"
          "test.toml:1: [meter] key 'name': required key is missing\n"
          "test.toml:4: [meter] key 'parity': 'mark' is not one of none|even|odd");
}

TEST_CASE("claims are kept with the configuration; a default key is located at its table", "[config]") {
    auto t = parse("\n[meter]\nname = \"x\"\n");
    Config c = validate_config("test.toml", "meter", t, *t->get("meter")->as_table(), keys);
    CHECK(c.claims().empty());
    c.claim("parity", "the serial device /dev/x");
    Config copy = c;
    REQUIRE(copy.claims().size() == 1);
    CHECK(copy.claims()[0].key == "parity");
    CHECK(copy.claims()[0].resource == "the serial device /dev/x");
    CHECK(c.where("parity") == "test.toml:2: [meter] key 'parity'");
}

TEST_CASE("a plugin's broken default is its own bug", "[config]") {
    ConfigKey bad{"x", KeyType::integer, "\"text\"", "wrong default"};
    CHECK_THROWS_AS(parse_default(bad), std::logic_error);
    ConfigKey garbage{"x", KeyType::integer, "1 2", "not TOML"};
    CHECK_THROWS_AS(parse_default(garbage), std::logic_error);
}

namespace {

struct TempFile {
    std::filesystem::path path;
    explicit TempFile(std::string_view text) {
        path = std::filesystem::temp_directory_path() / ("moat-config-" + std::to_string(::getpid()) + ".toml");
        std::ofstream(path) << text;
    }
    ~TempFile() { std::filesystem::remove(path); }
};

std::string load_error(std::string_view text) {
    TempFile f(text);
    try {
        load_config_file(f.path.string(), "/plugins");
    } catch (const ConfigError& e) {
        std::string msg = e.what();
        auto pos = msg.find(f.path.string());
        if (pos == 0) msg.replace(0, f.path.string().size(), "FILE");
        return msg;
    }
    return "no error";
}

} // namespace

TEST_CASE("the config file has a [host] table and instance tables", "[config]") {
    TempFile f("[host]\nbus = \"session\"\nplugin_dir = \"plug\"\nwatchdog = 5\n\n[grid]\nkind = \"meters\"\n"
               "[solar]\nkind = \"meters\"\nenabled = false\n[heartbeat]\n");
    auto cfg = load_config_file(f.path.string(), "/default");
    CHECK(cfg.host.bus == "session");
    CHECK(cfg.host.plugin_path.back() == (f.path.parent_path() / "plug").string());
    CHECK(cfg.host.watchdog == std::chrono::seconds(5));
    CHECK(cfg.host.stop_timeout == std::chrono::seconds(3));
    REQUIRE(cfg.instances.size() == 3);
    CHECK(cfg.instances[0].name == "grid");
    CHECK(cfg.instances[0].kind == "meters");
    CHECK(cfg.instances[1].kind == "meters");
    CHECK_FALSE(cfg.instances[1].enabled);
    CHECK(cfg.instances[2].kind == "heartbeat");
    CHECK(cfg.instances[2].enabled);
}

TEST_CASE("config file: every instance table error is reported, in the order of the file", "[config]") {
    TempFile f("[b]\nkind = 3\n[a]\nenabled = \"yes\"\n[c]\nkind = \"\"\n");
    std::string err;
    try {
        load_config_file(f.path.string(), "/default");
    } catch (const ConfigError& e) {
        err = e.what();
    }
    const std::string p = f.path.string();
    CHECK(err == p + ":2: [b] key 'kind': expected a plugin kind (a non-empty string)\n" + p +
                     ":4: [a] key 'enabled': expected boolean\n" + p +
                     ":6: [c] key 'kind': expected a plugin kind (a non-empty string)");
}

TEST_CASE("@RUN_DIR@ and @FREE_PORT@ in a config file: one directory and one port for the whole run", "[config]") {
    TempFile f("[host]\nplugin_dir = \"@RUN_DIR@/plug\"\nplugin_path = [\"@RUN_DIR@/a\", \"/x/@FREE_PORT@\", "
               "\"/y/@FREE_PORT@\"]\n");
    auto cfg = load_config_file(f.path.string(), "/default");
    const std::string dir = run_dir();
    CHECK(std::filesystem::path(dir).filename().string().starts_with("moat-victron-run-"));
    CHECK(std::filesystem::is_directory(dir));
    // Private to the run: only the owner may enter it.
    CHECK((std::filesystem::status(dir).permissions() & std::filesystem::perms::all) == std::filesystem::perms::owner_all);
    const std::string port = std::to_string(free_tcp_port());
    CHECK(cfg.host.plugin_path == std::vector<std::string>{dir + "/a", "/x/" + port, "/y/" + port, dir + "/plug"});
    // A reload reads the same file again: the same directory.
    CHECK(load_config_file(f.path.string(), "/default").host.plugin_path == cfg.host.plugin_path);
}

TEST_CASE("config file errors name the line", "[config]") {
    CHECK(load_error("[host]\nbus = \"system\"\nwatchdg = 5\n") ==
          "FILE:3: [host] key 'watchdg': unknown key (this plugin knows: bus, plugin_dir, plugin_path, log_level, log_timestamps, "
          "restart_delay, restart_max_delay, restart_factor, restart_reset_after, watchdog, stop_timeout)");
    CHECK(load_error("[host]\nlog_level = \"loud\"\n") ==
          "FILE:2: [host] key 'log_level': 'loud' is not one of debug|info|warning|error");
    CHECK(load_error("[host]\nstop_timeout = 0\n") == "FILE:2: [host] key 'stop_timeout': 0 is out of range [0.1, 60]");
    CHECK(load_error("[a]\nenabled = \"yes\"\n") == "FILE:2: [a] key 'enabled': expected boolean");
    CHECK(load_error("[a]\nkind = 3\n") == "FILE:2: [a] key 'kind': expected a plugin kind (a non-empty string)");
    CHECK(load_error("x = 1\n") == "FILE:1: key 'x': expected a table [x] for a plugin instance, got a value");
    CHECK(load_error("[a]\nkey = = 1\n").starts_with("FILE:2:7: TOML syntax error: "));
}

TEST_CASE("nodes of table keys keep their line numbers for errors", "[config]") {
    const ConfigKey table_keys[] = {{"items", KeyType::array, "[]", "items"}};
    auto t = parse("[dev]\nitems = [\n  { path = \"/A\" },\n  { path = 5 },\n]\n");
    Config c = validate_config("test.toml", "dev", t, *t->get("dev")->as_table(), table_keys);
    ConfigNode items = c.node("items");
    REQUIRE(items.kind() == ConfigNode::Kind::array);
    REQUIRE(items.size() == 2);
    ConfigNode bad = items.at(1).get("path");
    CHECK(bad.type_name() == "an integer");
    CHECK(bad.as_int() == 5);
    CHECK_FALSE(bad.as_string());
    CHECK(items.at(0).get("path").as_string() == "/A");
    CHECK(items.at(0).keys() == std::vector<std::string>{"path"});
    CHECK_FALSE(items.at(2));
    CHECK_FALSE(items.at(0).get("nosuch"));
    CHECK(bad.from_file());
    CHECK_THROWS_WITH(c.fail_at(bad, "item 2 key 'path'", "expected a string"),
                      "test.toml:4: [dev] item 2 key 'path': expected a string");
}

TEST_CASE("a nested table is validated with the instance's rules", "[config]") {
    const ConfigKey outer[] = {{"grid", KeyType::table, "{}", "grid"}};
    const ConfigKey inner[] = {{"port", KeyType::integer, "502", "port", 1, 65535}, {"host", KeyType::string, nullptr, "host"}};
    Config c = parse_config("[sim]\ngrid = { host = \"h\" }\n", "sim.toml", "sim", outer);
    Config g = validate_table(c.node("grid"), "sim.grid", inner);
    CHECK(g.get_int("port") == 502);
    CHECK(g.get_string("host") == "h");
    CHECK_FALSE(g.node("port").from_file());
    Config bad = parse_config("[sim]\n\ngrid = { port = 0 }\n", "sim.toml", "sim", outer);
    CHECK_THROWS_WITH(validate_table(bad.node("grid"), "sim.grid", inner),
                      "sim.toml:3: [sim.grid] key 'port': 0 is out of range [1, 65535]\n"
                      "sim.toml:3: [sim.grid] key 'host': required key is missing");
}

TEST_CASE("parse_config: what a plugin's own tests use", "[config]") {
    const ConfigKey k[] = {{"n", KeyType::integer, "1", "n"}};
    CHECK(parse_config("[x]\nn = 3\n", "x.toml", "x", k).get_int("n") == 3);
    CHECK_THROWS_WITH(parse_config("[x]\nn = = 3\n", "x.toml", "x", k), Catch::StartsWith("x.toml:2:"));
    CHECK_THROWS_WITH(parse_config("[y]\n", "x.toml", "x", k), "x.toml: no table [x]");
}

TEST_CASE("check_keys: every problem, and a configuration of the valid keys", "[config]") {
    auto t = parse("[meter]\nport = 0\ngain = 2\nparity = \"odd\"\ncolour = 1\n");
    CheckedKeys c = check_keys("test.toml", "meter", t, *t->get("meter")->as_table(), keys);
    CHECK(c.problems == std::vector<std::string>{
                            "test.toml:5: [meter] key 'colour': unknown key (this plugin knows: port, gain, name, "
                            "parity, ids, on)",
                            "test.toml:2: [meter] key 'port': 0 is out of range [1, 65535]",
                            "test.toml:1: [meter] key 'name': required key is missing"});
    CHECK(c.invalid == std::set<std::string, std::less<>>{"name", "port"});
    CHECK_FALSE(c.invalid_node_key);
    // the valid keys are there (given or default), the invalid ones are not
    CHECK(c.config.get_number("gain") == 2.0);
    CHECK(c.config.get_string("parity") == "odd");
    CHECK(c.config.get_bool("on"));
    CHECK_THROWS_AS(c.config.get_int("port"), std::logic_error);
    CHECK(c.config.where("gain") == "test.toml:3: [meter] key 'gain'");

    auto fine = parse("[meter]\nname = \"x\"\n");
    CheckedKeys f = check_keys("test.toml", "meter", fine, *fine->get("meter")->as_table(), keys);
    CHECK(f.problems.empty());
    CHECK(f.invalid.empty());
    CHECK(f.config.get_string("name") == "x");
}

TEST_CASE("new_problems drops the lines about keys already reported", "[config]") {
    std::set<std::string, std::less<>> invalid{"port"};
    CHECK(new_problems("f:1: [m] key 'port': again\nf:2: [m] key 'devices': bad\nf:3: [n] key 'port': other",
                       "m", invalid) == std::vector<std::string>{"f:2: [m] key 'devices': bad",
                                                                 "f:3: [n] key 'port': other"});
}

TEST_CASE("config file: the [host] table's problems are collected with the instance tables'", "[config]") {
    namespace fs = std::filesystem;
    auto path = fs::temp_directory_path() / "moat-check-keys-test.toml";
    {
        std::ofstream f(path);
        f << "[host]\nwatchdog = -1\nbus = \"\"\nstop_timeout = 2.5\n\n[a]\nkind = 3\n";
    }
    ConfigFile cf = read_config_file(path.string(), std::vector<std::string>{"/plugins"});
    CHECK(cf.problems == std::vector<std::string>{
                             path.string() + ":2: [host] key 'watchdog': -1 is out of range [0, 3600]",
                             path.string() + ":3: [host] key 'bus': must not be empty",
                             path.string() + ":7: [a] key 'kind': expected a plugin kind (a non-empty string)"});
    CHECK(cf.host.stop_timeout == std::chrono::milliseconds(2500));  // the valid keys apply
    CHECK(cf.plugin_path_known);
    CHECK_THROWS_AS(load_config_file(path.string(), std::vector<std::string>{"/plugins"}), ConfigError);
    fs::remove(path);
}
