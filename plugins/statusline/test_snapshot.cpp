// Readings and the path tables of the snapshot (snapshot.hpp, spec §2).
#include <catch2/catch.hpp>

#include "snapshot.hpp"

#include <set>
#include <string>
#include <vector>

using moat::Value;
using namespace moat::statusline;

TEST_CASE("a default Reading is missing and reads as invalid", "[snapshot]")
{
    const Reading r;
    CHECK(r.state() == Reading::State::missing);
    CHECK(r.value().is_invalid());
    CHECK(Reading::missing().state() == Reading::State::missing);
}

TEST_CASE("a present Reading holds its value, invalid ones included", "[snapshot]")
{
    const Reading r = 53.12;
    CHECK(r.state() == Reading::State::present);
    CHECK(r.value() == Value(53.12));
    CHECK(Reading(1650).value().kind() == Value::Kind::integer);
    const Reading invalid = Value::invalid();
    CHECK(invalid.state() == Reading::State::present);
    CHECK(invalid.value().is_invalid());
}

TEST_CASE("a stale Reading keeps its value for diagnostics but reads as invalid", "[snapshot]")
{
    const Reading r = Reading::stale(27.5);
    CHECK(r.state() == Reading::State::stale);
    CHECK(r.value().is_invalid());
    CHECK(r.cached() == Value(27.5));
    CHECK(state_name(r.state()) == "stale");
    CHECK(state_name(Reading::State::present) == "present");
    CHECK(state_name(Reading::State::missing) == "missing");
}

namespace {

// Every listed path leads to its own reading, and nothing else does.
template <class Service> void check_paths(Service& service, const std::vector<std::string>& expected)
{
    std::vector<std::string> listed(Service::paths().begin(), Service::paths().end());
    CHECK(listed == expected);
    std::set<const Reading*> seen;
    for (auto path : Service::paths()) {
        INFO(path);
        Reading* r = service.at(path);
        REQUIRE(r != nullptr);
        CHECK(seen.insert(r).second);
    }
    CHECK(service.at("/DeviceInstance") == nullptr);
    CHECK(service.at("") == nullptr);
}

} // namespace

TEST_CASE("solar charger paths are those of spec §2", "[snapshot]")
{
    SolarCharger c;
    check_paths(c, {"/Dc/0/Voltage", "/Dc/0/Current", "/Link/ChargeCurrent", "/Yield/Power"});
    CHECK(c.at("/Link/ChargeCurrent") == &c.link_charge_current);
    CHECK(c.at("/Yield/Power") == &c.yield_power);
}

TEST_CASE("battery paths are those of spec §2", "[snapshot]")
{
    Battery b;
    check_paths(b, {"/Dc/0/Voltage", "/Dc/0/Current", "/Info/MaxChargeCurrent", "/Info/MaxChargeVoltage",
                    "/Info/MaxDischargeCurrent", "/Io/AllowToCharge", "/Io/AllowToDischarge"});
    CHECK(b.at("/Info/MaxChargeVoltage") == &b.max_charge_voltage);
    CHECK(b.at("/Io/AllowToDischarge") == &b.allow_to_discharge);
}

TEST_CASE("vebus paths are those of spec §2 that the line uses", "[snapshot]")
{
    Vebus v;
    check_paths(v, {"/Dc/0/Current", "/Hub4/L1/AcPowerSetpoint", "/Hub4/L2/AcPowerSetpoint",
                    "/Hub4/L3/AcPowerSetpoint", "/Ac/ActiveIn/L1/P", "/Ac/ActiveIn/L2/P", "/Ac/ActiveIn/L3/P"});
    CHECK(v.at("/Hub4/L2/AcPowerSetpoint") == &v.ac_power_setpoint[1]);
    CHECK(v.at("/Ac/ActiveIn/L3/P") == &v.active_in_power[2]);
    CHECK(v.at("/Dc/0/Voltage") == nullptr); // subscribed by the original, never used
}

TEST_CASE("system paths are those of spec §2 that the line uses", "[snapshot]")
{
    System s;
    check_paths(s, {"/VebusService", "/Ac/ActiveIn/NumberOfPhases", "/Ac/ActiveIn/L1/Power",
                    "/Ac/ActiveIn/L2/Power", "/Ac/ActiveIn/L3/Power", "/Ac/Grid/L1/Power", "/Ac/Grid/L2/Power",
                    "/Ac/Grid/L3/Power"});
    CHECK(s.at("/Ac/Grid/L2/Power") == &s.grid_power[1]);
    CHECK(s.at("/Ac/ActiveIn/L1/Power") == &s.active_in_power[0]);
    CHECK(s.at("/Ac/ActiveIn/NumberOfPhases") == &s.phase_count);
    CHECK(s.at("/Dc/Pv/Power") == nullptr);
    CHECK(System::service == "com.victronenergy.system");
}

TEST_CASE("controller paths: the mode and each mode's target", "[snapshot]")
{
    Controller c;
    check_paths(c, {"/Mode", "/Power", "/Current", "/DestSoc"});
    CHECK(c.at("/Power") == &c.power);
    CHECK(c.at("/Status") == nullptr);
}
