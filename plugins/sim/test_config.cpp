#include <catch2/catch.hpp>

#include "sim_config.hpp"

using namespace moat;
using namespace moat::sim;

namespace {

Config load(const std::string& text) {
    return moat::parse_config(text, "sim.toml", "sim", config_keys());
}

std::string error_of(const std::string& text) {
    try {
        parse_config(load(text));
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

} // namespace

TEST_CASE("the sim's defaults make a complete one-phase system", "[sim][config]") {
    auto c = parse_config(load("[sim]\n"));
    CHECK(c.suffix == "sim");
    CHECK(c.system.multi.phases == 1);
    CHECK(c.system.multi.timeout_s == 60);
    CHECK(c.system.solar.size() == 1);
    CHECK(c.solar_instances == std::vector<std::int64_t>{278});
    CHECK(c.system.battery.ocv.size() == 11);
    CHECK(c.faults.empty());
    CHECK(c.settings);
    CHECK(c.stop_linger == 1.0);
    CHECK(c.settings_file.empty());  // in memory only
    CHECK(c.system.multi.max_charge_current == 100);
}

TEST_CASE("the settings file is relative to the config file", "[sim][config]") {
    auto c = parse_config(load("[sim]\nsettings = { file = \"sim-settings.toml\" }\n"));
    CHECK(c.settings_file == "sim-settings.toml");  // the config file "sim.toml" has no directory
    auto abs = parse_config(load("[sim]\nsettings = { file = \"/data/s.toml\", enabled = false }\n"));
    CHECK(abs.settings_file == "/data/s.toml");
    CHECK_FALSE(abs.settings);
}

TEST_CASE("sub-tables are read and checked", "[sim][config]") {
    auto c = parse_config(load(R"(
[sim]
phases = 3
suffix = "demo"
vebus = { rating = 5000, tau = 1.0, timeout = 5 }
battery = { capacity = 100, soc = 20, ocv = [48, 52, 54] }
solar = [ { peak = 1000 }, { peak = 2000, instance = 300 } ]
load = { base = [100, 200, 300], noise = 0 }
faults = { battery = "freeze", after = 30 }
)"));
    CHECK(c.system.multi.phases == 3);
    CHECK(c.system.multi.rating_w == 5000);
    CHECK(c.system.battery.ocv == std::vector<double>{48, 52, 54});
    CHECK(c.system.solar.size() == 2);
    CHECK(c.solar_instances == std::vector<std::int64_t>{278, 300});
    CHECK(c.system.load.base_w == std::vector<double>{100, 200, 300});
    CHECK(c.faults.at(DeviceKind::battery) == Fault::freeze);
    CHECK(c.fault_after == 30);
    auto none = parse_config(load("[sim]\nsolar = []\n"));
    CHECK(none.system.solar.empty());
}

TEST_CASE("config errors name the line, the table and the key", "[sim][config]") {
    using Catch::Contains;
    CHECK_THAT(error_of("[sim]\nbattery = { capacity = -1 }\n"),
               Contains("sim.toml:2") && Contains("'battery'") && Contains("'capacity'") && Contains("out of range"));
    CHECK_THAT(error_of("[sim]\nvebus = { ratin = 1 }\n"), Contains("'ratin'") && Contains("unknown key"));
    CHECK_THAT(error_of("[sim]\nphases = 3\nload = { base = [1] }\n"), Contains("each of the 3 phases"));
    CHECK_THAT(error_of("[sim]\nfaults = { grid = \"broken\" }\n"), Contains("none|freeze|invalid|vanish"));
    CHECK_THAT(error_of("[sim]\nsettings = { fil = \"x\" }\n"), Contains("'settings'") && Contains("'fil'"));
    CHECK_THAT(error_of("[sim]\nbattery = { ocv = [\"a\"] }\n"), Contains("array of numbers"));
}

TEST_CASE("grid.modbus serves the grid meter over Modbus instead of D-Bus", "[sim][config]") {
    CHECK_FALSE(parse_config(load("[sim]\n")).grid_modbus);
    CHECK_FALSE(parse_config(load("[sim]\ngrid = { modbus = {} }\n")).grid_modbus);  // port 0: on D-Bus
    auto c = parse_config(load("[sim]\nphases = 3\ngrid = { modbus = { port = 5020, type = \"em24rtu\", unit = 2, "
                               "serial = \"AB12345678901\" } }\n"));
    REQUIRE(c.grid_modbus);
    CHECK(c.grid_modbus->port == 5020);
    CHECK(c.grid_modbus->host == "127.0.0.1");
    CHECK(c.grid_modbus->type == "em24rtu");
    CHECK(c.grid_modbus->unit == 2);
    CHECK(c.grid_modbus->serial == "AB12345678901");
    CHECK_THAT(error_of("[sim]\ngrid = { modbus = { port = 5020, type = \"sdm999\" } }\n"),
               Catch::Contains("grid"));
    CHECK_THAT(error_of("[sim]\nphases = 3\ngrid = { modbus = { port = 5020, type = \"sdm120\" } }\n"),
               Catch::Contains("one phase"));
    CHECK_THAT(error_of("[sim]\ngrid = { modbus = { port = 5020 } }\nfaults = { grid = \"freeze\" }\n"),
               Catch::Contains("served over Modbus"));
}

TEST_CASE("system = false leaves the system service to Victron's systemcalc", "[sim][config]") {
    CHECK(parse_config(load("[sim]\n")).system_service);
    CHECK(parse_config(load("[sim]\nvebus = { max_charge_current = 35.0 }\n")).system.multi.max_charge_current == 35);
    auto c = parse_config(load("[sim]\nsystem = false\n"));
    CHECK_FALSE(c.system_service);
    CHECK_THAT(error_of("[sim]\nsystem = false\nfaults = { system = \"freeze\" }\n"),
               Catch::Contains("no simulated system service"));
}

TEST_CASE("moat_bms.battery names the battery service the system selects", "[sim][config]") {
    auto c = parse_config(load("[sim]\n[sim.moat_bms]\nenabled = true\nlink = \"pty:/tmp/x\"\n"
                               "battery = \"com.victronenergy.battery.batt\"\n"));
    REQUIRE(c.moat_bms);
    CHECK(c.moat_bms->battery == "com.victronenergy.battery.batt");
    CHECK(parse_config(load("[sim]\n[sim.moat_bms]\nenabled = true\nlink = \"pty:/tmp/x\"\n")).moat_bms->battery.empty());
    CHECK(error_of("[sim]\n[sim.moat_bms]\nenabled = true\nlink = \"pty:/tmp/x\"\nbattery = \"batt\"\n")
              .find("key 'battery': a com.victronenergy.battery.* name, not 'batt'") != std::string::npos);
}
