#include <catch2/catch.hpp>

#include "devices.hpp"

using namespace moat;
using namespace moat::sim;

namespace {

double num(const Values& v, const std::string& path) {
    auto it = v.find(path);
    REQUIRE(it != v.end());
    auto d = it->second.as_number();
    REQUIRE(d);
    return *d;
}

Published publish(const System& s) {
    Published p;
    p.vebus_name = "com.victronenergy.vebus.t";
    p.battery_name = "com.victronenergy.battery.t";
    p.battery_instance = 512;
    p.vebus = vebus_values(s);
    p.battery = battery_values(s);
    p.grid = grid_values(s);
    for (std::size_t i = 0; i < s.solar.size(); ++i) p.solar.push_back(solar_values(s, i));
    return p;
}

} // namespace

TEST_CASE("systemcalc balances what the devices publish", "[sim][devices]") {
    SystemConfig c;
    c.multi.phases = 3;
    c.start_hour = 12;
    c.solar.push_back(SolarConfig{});
    System s(c);
    for (int n = 0; n < 3; ++n) s.multi.write_setpoint(n, -500.0 * (n + 1), s.now());
    s.advance(10);
    auto sys = systemcalc(publish(s), 3);
    // DC: PV + Multi = battery (Victron signs).
    CHECK(num(sys, "/Dc/Pv/Current") + num(sys, "/Dc/Vebus/Current") == Approx(num(sys, "/Dc/Battery/Current")));
    CHECK(num(sys, "/Dc/Pv/Power") + num(sys, "/Dc/Vebus/Power") == Approx(num(sys, "/Dc/Battery/Power")));
    CHECK(num(sys, "/Dc/Pv/Current") == Approx(s.pv_current()));
    for (int n = 1; n <= 3; ++n) {
        auto l = "/Ac/Grid/L" + std::to_string(n) + "/Power";
        auto cons = "/Ac/Consumption/L" + std::to_string(n) + "/Power";
        auto multi = num(vebus_values(s), "/Ac/ActiveIn/L" + std::to_string(n) + "/P");
        CHECK(num(sys, l) == Approx(num(sys, cons) + multi));
        CHECK(num(sys, cons) == Approx(s.load.power()[n - 1]));
        CHECK(multi < -100);
    }
    CHECK(sys.at("/Dc/Battery/BatteryService") == Value("com.victronenergy.battery.t"));
    CHECK(sys.at("/ActiveBatteryService") == Value("com.victronenergy.battery/512"));
    CHECK(sys.at("/VebusService") == Value("com.victronenergy.vebus.t"));
    CHECK(sys.at("/Ac/ActiveIn/NumberOfPhases") == Value(3));
    const double bp = num(sys, "/Dc/Battery/Power");
    CHECK(sys.at("/Dc/Battery/State") == Value(bp > 30 ? 1 : bp < -30 ? 2 : 0));
    CHECK(sys.at("/Dc/Pv/Power").is_double());
}

TEST_CASE("systemcalc shows what is missing as invalid", "[sim][devices]") {
    System s(SystemConfig{});
    s.advance(1);
    auto p = publish(s);
    p.battery.reset();  // vanished
    p.grid = invalidated(*p.grid);
    p.solar[0].reset();
    auto sys = systemcalc(p, 1);
    CHECK(sys.at("/Dc/Battery/Voltage").is_invalid());
    CHECK(sys.at("/Dc/Battery/BatteryService").is_invalid());
    CHECK(sys.at("/Dc/Pv/Current").is_invalid());
    CHECK(sys.at("/Ac/Grid/L1/Power").is_invalid());
    CHECK(sys.at("/Ac/Consumption/L1/Power").is_invalid());
    CHECK(sys.at("/Dc/Vebus/Current").is_valid());
    p = publish(s);
    p.vebus.reset();  // no Multi: everything on the grid meter is consumption
    sys = systemcalc(p, 1);
    CHECK(num(sys, "/Ac/Consumption/L1/Power") == Approx(num(sys, "/Ac/Grid/L1/Power")));
    CHECK(sys.at("/VebusService").is_invalid());
}

TEST_CASE("the device views carry the issue's paths with Venus types", "[sim][devices]") {
    SystemConfig c;
    c.multi.phases = 3;
    System s(c);
    s.advance(1);
    auto v = vebus_values(s);
    for (auto p : {"/Ac/ActiveIn/L3/P", "/Ac/ActiveIn/P", "/Ac/Out/L2/P", "/Dc/0/Voltage", "/Dc/0/Current",
                   "/Dc/0/Power", "/Hub/ChargeVoltage", "/Hub4/L3/AcPowerSetpoint"})
        CHECK(v.at(p).is_double());
    for (auto p : {"/Hub4/DisableCharge", "/Hub4/DisableFeedIn", "/Hub4/AssistantId", "/Mode", "/State"})
        CHECK(v.at(p).is_int());
    CHECK(v.at("/Hub4/AssistantId") == Value(5));
    auto b = battery_values(s);
    for (auto p : {"/Info/MaxChargeVoltage", "/Info/MaxChargeCurrent", "/Info/MaxDischargeCurrent",
                   "/Info/BatteryLowVoltage", "/Soc", "/Capacity", "/Dc/0/Voltage", "/Dc/0/Current", "/Dc/0/Power"})
        CHECK(b.at(p).is_double());
    CHECK(b.at("/Io/AllowToCharge") == Value(1));
    CHECK(b.at("/Io/AllowToDischarge").is_int());
    auto sol = solar_values(s, 0);
    CHECK(sol.at("/Link/ChargeCurrent").is_invalid());
    CHECK(sol.at("/Yield/Power").is_double());
    auto g = grid_values(s);
    CHECK(g.at("/Ac/L3/Power").is_double());
    CHECK(g.at("/NrOfPhases") == Value(3));
    auto inv = invalidated(b);
    CHECK(inv.at("/Soc").is_invalid());
    CHECK(inv.at("/Sim/AllowToCharge") == Value(-1));
}

TEST_CASE("client writes reach the model", "[sim][devices]") {
    SystemConfig c;
    c.multi.phases = 2;
    System s(c);
    CHECK(apply_write(s, DeviceKind::vebus, 0, "/Hub4/L2/AcPowerSetpoint", Value(-700)));
    CHECK(s.multi.setpoint(1) == -700);
    CHECK_FALSE(s.multi.fallen_back(s.now()));
    CHECK_FALSE(apply_write(s, DeviceKind::vebus, 0, "/Hub4/L3/AcPowerSetpoint", Value(1.0)));  // 2 phases
    CHECK(apply_write(s, DeviceKind::vebus, 0, "/Hub4/DisableFeedIn", Value(1)));
    CHECK(s.multi.disable_feed_in);
    CHECK(apply_write(s, DeviceKind::battery, 0, "/Sim/AllowToDischarge", Value(0)));
    CHECK_FALSE(s.battery.allow_discharge());
    CHECK(apply_write(s, DeviceKind::battery, 0, "/Sim/AllowToDischarge", Value(-1)));
    CHECK(s.battery.allow_discharge());
    CHECK(apply_write(s, DeviceKind::battery, 0, "/Sim/Soc", Value(3.0)));
    CHECK_FALSE(s.battery.allow_discharge());  // the BMS sees an empty battery
    CHECK(apply_write(s, DeviceKind::solarcharger, 0, "/Link/ChargeCurrent", Value(12)));
    CHECK(s.solar[0].link_current == 12.0);
    CHECK(apply_write(s, DeviceKind::solarcharger, 0, "/Link/ChargeCurrent", Value()));
    CHECK_FALSE(s.solar[0].link_current);
    auto w = writeable(DeviceKind::vebus, "/Hub4/L1/AcPowerSetpoint");
    REQUIRE(w);
    CHECK(w->keep_alive);
    CHECK(writeable(DeviceKind::grid, "/Sim/Fault"));
    CHECK_FALSE(writeable(DeviceKind::grid, "/Ac/Power"));
    CHECK(text_format("/Dc/0/Voltage") == "%.2F V");
    CHECK(text_format("/Hub4/L1/AcPowerSetpoint") == "%.0F W");
}

TEST_CASE("the simulated settings hold ESS mode 3 and Venus's DVCC defaults", "[sim][devices]") {
    std::map<std::string, Value> by_path;
    for (const auto& s : ess_settings()) by_path[s.path] = s.default_value;
    CHECK(by_path.at(hub4_mode_path) == Value(3));
    CHECK(by_path.at("/Settings/CGwacs/OvervoltageFeedIn") == Value(0));
    CHECK(by_path.at("/Settings/CGwacs/MaxFeedInPower").is_double());
    CHECK(by_path.at("/Settings/CGwacs/BatteryLife/MinimumSocLimit") == Value(10.0));
    CHECK(by_path.at("/Settings/SystemSetup/MaxChargeCurrent") == Value(-1));
    CHECK(by_path.at("/Settings/SystemSetup/MaxChargeVoltage") == Value(0.0));
    CHECK(by_path.at("/Settings/SystemSetup/BatteryService") == Value("default"));
    for (const auto& s : ess_settings()) {
        INFO(s.path);
        CHECK(s.path.rfind("/Settings/", 0) == 0);
        if (s.min.is_valid()) CHECK(*s.min.as_number() <= *s.default_value.as_number());
        if (s.max.is_valid()) CHECK(*s.max.as_number() >= *s.default_value.as_number());
    }
}

TEST_CASE("the Multi takes DVCC's limits: writeable with Venus types, published as written", "[sim][devices]") {
    System s(SystemConfig{});
    auto v = vebus_values(s);
    // Before any write: the BMS's values (the sim doing DVCC's job).
    CHECK(v.at("/BatteryOperationalLimits/MaxChargeCurrent") == Value(100.0));
    CHECK(v.at("/Dc/0/MaxChargeCurrent") == Value(100.0));
    for (const char* p : {"/BatteryOperationalLimits/MaxChargeVoltage", "/BatteryOperationalLimits/MaxChargeCurrent",
                          "/BatteryOperationalLimits/MaxDischargeCurrent",
                          "/BatteryOperationalLimits/BatteryLowVoltage", "/Dc/0/MaxChargeCurrent"}) {
        INFO(p);
        auto w = writeable(DeviceKind::vebus, p);
        REQUIRE(w);
        CHECK(w->type == Writeable::Type::floating);
        CHECK(w->min == 0);
        CHECK(vebus_values(s).at(p).is_double());
    }
    CHECK(apply_write(s, DeviceKind::vebus, 0, "/BatteryOperationalLimits/MaxChargeCurrent", Value(12.0)));
    CHECK(apply_write(s, DeviceKind::vebus, 0, "/BatteryOperationalLimits/MaxChargeVoltage", Value(54)));
    CHECK(apply_write(s, DeviceKind::vebus, 0, "/BatteryOperationalLimits/MaxDischargeCurrent", Value()));
    CHECK(apply_write(s, DeviceKind::vebus, 0, "/Dc/0/MaxChargeCurrent", Value(30)));
    CHECK_FALSE(apply_write(s, DeviceKind::vebus, 0, "/BatteryOperationalLimits/Other", Value(1)));
    v = vebus_values(s);
    CHECK(v.at("/BatteryOperationalLimits/MaxChargeCurrent") == Value(12.0));
    CHECK(v.at("/BatteryOperationalLimits/MaxChargeVoltage") == Value(54.0));
    CHECK(v.at("/BatteryOperationalLimits/MaxDischargeCurrent").is_invalid());  // written invalid: no limit
    CHECK(v.at("/Dc/0/MaxChargeCurrent") == Value(30.0));
    CHECK(v.at("/Hub/ChargeVoltage") == Value(54.0));
    CHECK(s.multi.charge_current_limit() == 12.0);
}

TEST_CASE("the system service carries what consumers read, with systemcalc's types", "[sim][devices]") {
    System s(SystemConfig{});
    s.advance(1);
    auto p = publish(s);
    p.settings["/Settings/CGwacs/BatteryLife/State"] = Value(2);
    p.settings["/Settings/CGwacs/BatteryLife/SocLimit"] = Value(10.0);
    auto sys = systemcalc(p, 1);
    CHECK(sys.at("/Control/Dvcc") == Value(true));
    CHECK(sys.at("/Control/Dvcc").is_bool());
    for (const char* path : {"/Control/SolarChargeVoltage", "/Control/SolarChargeCurrent", "/Control/BmsParameters",
                             "/Control/MaxChargeCurrent", "/Control/EssState", "/Dvcc/Alarms/FirmwareInsufficient",
                             "/Ac/In/0/DeviceInstance", "/ActiveBmsInstance", "/SystemState/DischargeDisabled"}) {
        INFO(path);
        CHECK(sys.at(path).is_int());
    }
    CHECK(sys.at("/Control/EffectiveChargeVoltage") == Value(55.2));
    CHECK(sys.at("/Control/ActiveSocLimit") == Value(10.0));
    CHECK(sys.at("/AutoSelectedBatteryService") == Value("MoaT simulated battery on Simulation"));
    CHECK(sys.at("/AvailableBatteryServices").as_string().find("\"com.victronenergy.battery/512\"") != std::string::npos);
    CHECK(sys.at("/ActiveBmsService") == Value("com.victronenergy.battery.t"));
    CHECK(sys.at("/Ac/In/0/ServiceName").is_string());
    // The Multi's AC output carries nothing: systemcalc's max(0, x) gives the integer 0.
    CHECK(sys.at("/Ac/ConsumptionOnOutput/L1/Power") == Value(0));
    CHECK(sys.at("/Ac/ConsumptionOnOutput/L1/Power").is_int());
    CHECK(sys.at("/Ac/Consumption/L1/Power").is_double());  // the load is positive
    // Without a battery: the selection says so.
    p.battery.reset();
    sys = systemcalc(p, 1);
    CHECK(sys.at("/AutoSelectedBatteryService") == Value("No battery monitor found"));
    CHECK(sys.at("/ActiveBmsService").is_invalid());
}
