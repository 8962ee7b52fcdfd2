// Per-tick aggregation (aggregate.hpp, spec §2.1, §4, §8).
#include <catch2/catch.hpp>

#include "aggregate.hpp"
#include "test_examples.hpp"

#include <limits>

using namespace statusline_test;

template <> struct Catch::StringMaker<moat::Value> {
    static std::string convert(const moat::Value& v) { return std::string(moat::kind_name(v)) + " " + moat::repr(v); }
};

namespace {

Totals totals(const Aggregate& a)
{
    if (const auto* i = std::get_if<Incomplete>(&a))
        FAIL("incomplete: " << i->message());
    return std::get<Totals>(a);
}

Incomplete incomplete(const Aggregate& a)
{
    REQUIRE(std::holds_alternative<Incomplete>(a));
    return std::get<Incomplete>(a);
}

} // namespace

TEST_CASE("E1 aggregates to the spec's symbols with Python's number types", "[aggregate]")
{
    const Aggregate a = aggregate(e1());
    const Totals& t = totals(a);
    CHECK(t.chargers == 2);
    CHECK(t.charger_voltage == Value((53.12 + 53.18) / 2));
    CHECK(t.charger_current == Value(30.4 + 22.1));
    CHECK(t.charge_limit == Value(100.0));
    CHECK(t.charge_limit.kind() == Value::Kind::floating);
    CHECK(t.solar_power == Value(2840));
    CHECK(t.solar_power.kind() == Value::Kind::integer);
    CHECK(t.battery_current == Value(12.3));
    CHECK(t.max_charge_current == Value(140.0));
    CHECK(t.max_discharge_current == Value(200.0));
    CHECK(t.charge_voltage == Value(55.2));
    CHECK(t.charge_allowed);
    CHECK(t.discharge_allowed);
    CHECK(t.inverter_current == Value(-40.2));
    REQUIRE(t.phases.size() == 3);
    CHECK(t.phases[1].setpoint == Value(-650));
    CHECK(t.phases[1].system_power == Value(-310.0));
    CHECK(t.phases[1].vebus_power == Value(-648.9));
}

TEST_CASE("an invalid /Link/ChargeCurrent counts as integer 0", "[aggregate]")
{
    const Totals& t = totals(aggregate(e3()));
    CHECK(t.charge_limit == Value(0));
    CHECK(t.charge_limit.kind() == Value::Kind::integer);
    CHECK_FALSE(t.discharge_allowed);
    CHECK(t.charge_allowed);

    Snapshot s = e1();
    s.chargers[0].link_charge_current = Reading::missing();
    s.chargers[1].link_charge_current = "40";
    CHECK(totals(aggregate(s)).charge_limit == Value(0));
}

TEST_CASE("with no chargers and no batteries the sums are integer 0, the mean 0.0", "[aggregate]")
{
    const Totals& t = totals(aggregate(e7()));
    CHECK(t.chargers == 0);
    CHECK(t.charger_voltage.kind() == Value::Kind::floating);
    CHECK(t.charger_voltage == Value(0.0));
    for (const Value* v : {&t.charger_current, &t.charge_limit, &t.solar_power, &t.battery_current,
                           &t.max_charge_current, &t.max_discharge_current, &t.charge_voltage}) {
        CHECK(v->kind() == Value::Kind::integer);
        CHECK(*v == Value(0));
    }
    CHECK(t.charge_allowed);
    CHECK(t.discharge_allowed);
}

TEST_CASE("the charger voltage is the mean, summed in enumeration order", "[aggregate]")
{
    Snapshot s = e1();
    s.chargers.push_back(charger("ttyO3", 53.2, 0.5, Value::invalid(), 27));
    const Totals& t = totals(aggregate(s));
    CHECK(t.chargers == 3);
    CHECK(t.charger_voltage.as_double() == ((53.12 + 53.18) + 53.2) / 3);
    CHECK(t.solar_power == Value(2867));
    CHECK(t.charge_limit == Value(100.0));

    Snapshot ints;
    ints.chargers = {charger("a", 53, 30, 60, 1650), charger("b", 54, 1, 2, 3)};
    set_ac(ints, -1.0, {});
    const Totals& ti = totals(aggregate(ints));
    CHECK(ti.charger_voltage.kind() == Value::Kind::floating);
    CHECK(ti.charger_voltage == Value(53.5));
    CHECK(ti.charger_current == Value(31));
    CHECK(ti.charger_current.kind() == Value::Kind::integer);
}

TEST_CASE("a charger value that is not a number makes the tick incomplete (layer 1)", "[aggregate]")
{
    auto field = GENERATE(as<std::string>{}, "/Dc/0/Voltage", "/Dc/0/Current", "/Yield/Power");
    Snapshot s = e1();
    Reading& r = *s.chargers[1].at(field);

    SECTION("invalid") {
        r = Value::invalid();
        const Incomplete i = incomplete(aggregate(s));
        CHECK(i.service == "com.victronenergy.solarcharger.ttyO2");
        CHECK(i.path == field);
        CHECK(i.reason == "invalid");
        CHECK(i.message() == "com.victronenergy.solarcharger.ttyO2 " + field + ": invalid");
    }
    SECTION("missing") {
        r = Reading::missing();
        CHECK(incomplete(aggregate(s)).reason == "missing");
    }
    SECTION("stale") {
        r = Reading::stale(53.0);
        CHECK(incomplete(aggregate(s)).reason == "stale");
    }
    SECTION("a string") {
        r = "53.0";
        CHECK(incomplete(aggregate(s)).reason == "not a number: '53.0'");
    }
}

TEST_CASE("battery values the original crashes on make the tick incomplete ([RECOMMEND], §8)", "[aggregate]")
{
    auto field = GENERATE(as<std::string>{}, "/Dc/0/Voltage", "/Dc/0/Current", "/Info/MaxChargeCurrent",
                          "/Info/MaxDischargeCurrent");
    Snapshot s = e1();
    *s.batteries[0].at(field) = Value::invalid();
    const Incomplete i = incomplete(aggregate(s));
    CHECK(i.service == "com.victronenergy.battery.socketcan_can0");
    CHECK(i.path == field);
    CHECK(i.reason == "invalid");
}

TEST_CASE("a SmartShunt beside a BMS (no /Info limits) makes the tick incomplete (§8)", "[aggregate]")
{
    Snapshot s = e1();
    Battery shunt;
    shunt.service = "com.victronenergy.battery.ttyO4";
    shunt.voltage = 53.01;
    shunt.current = 12.1;
    s.batteries.push_back(shunt);
    const Incomplete i = incomplete(aggregate(s));
    CHECK(i.message() == "com.victronenergy.battery.ttyO4 /Info/MaxChargeCurrent: missing");
}

TEST_CASE("the first problem is reported: chargers, then batteries, then the phase count", "[aggregate]")
{
    Snapshot s = e1();
    s.system->phase_count = Value(7);  // not a phase count
    CHECK(incomplete(aggregate(s)).path == "/Ac/ActiveIn/NumberOfPhases");
    s.batteries[0].current = Value::invalid();
    CHECK(incomplete(aggregate(s)).path == "/Dc/0/Current");
    CHECK(incomplete(aggregate(s)).service == "com.victronenergy.battery.socketcan_can0");
    s.chargers[0].yield_power = Value::invalid();
    s.chargers[1].voltage = Value::invalid();
    CHECK(incomplete(aggregate(s)).message() == "com.victronenergy.solarcharger.ttyO1 /Yield/Power: invalid");
}

TEST_CASE("cv is the lowest valid /Info/MaxChargeVoltage, whatever the order (§8)", "[aggregate]")
{
    Snapshot s = e1();
    s.batteries.push_back(battery("second", 53.0, 0.0, 0, 56.0, 0.0, 1, 1));
    CHECK(totals(aggregate(s)).charge_voltage == Value(55.2));
    std::swap(s.batteries[0], s.batteries[1]);
    CHECK(totals(aggregate(s)).charge_voltage == Value(55.2));

    SECTION("invalid, non-numeric and NaN values are skipped") {
        s.batteries[1].max_charge_voltage = Value::invalid();
        CHECK(totals(aggregate(s)).charge_voltage == Value(56.0));
        s.batteries[1].max_charge_voltage = "55";
        CHECK(totals(aggregate(s)).charge_voltage == Value(56.0));
        s.batteries[1].max_charge_voltage = std::numeric_limits<double>::quiet_NaN();
        CHECK(totals(aggregate(s)).charge_voltage == Value(56.0));
    }
    SECTION("none valid gives integer 0") {
        s.batteries[0].max_charge_voltage = Reading::missing();
        s.batteries[1].max_charge_voltage = Value::invalid();
        const Value cv = totals(aggregate(s)).charge_voltage;
        CHECK(cv.kind() == Value::Kind::integer);
        CHECK(cv == Value(0));
    }
    SECTION("the value keeps its type") {
        s.batteries[0].max_charge_voltage = 55;
        CHECK(totals(aggregate(s)).charge_voltage.kind() == Value::Kind::integer);
    }
}

TEST_CASE("okc and okd are the AND of every battery's flag, by Python truthiness", "[aggregate]")
{
    Snapshot s = e1();
    s.batteries.push_back(battery("second", 53.0, 0.0, 0, 56.0, 0.0, 1, 1));
    CHECK(totals(aggregate(s)).charge_allowed);

    s.batteries[1].allow_to_charge = 0;
    CHECK_FALSE(totals(aggregate(s)).charge_allowed);
    CHECK(totals(aggregate(s)).discharge_allowed);

    s.batteries[1].allow_to_charge = true;
    s.batteries[0].allow_to_discharge = Reading::missing(); // None is false
    CHECK(totals(aggregate(s)).charge_allowed);
    CHECK_FALSE(totals(aggregate(s)).discharge_allowed);

    s.batteries[0].allow_to_discharge = 1.0;
    s.batteries[0].allow_to_charge = 0.0;
    CHECK_FALSE(totals(aggregate(s)).charge_allowed);
    CHECK(totals(aggregate(s)).discharge_allowed);

    s.batteries[0].allow_to_charge = Reading::stale(1);
    CHECK_FALSE(totals(aggregate(s)).charge_allowed);
}

TEST_CASE("sums over several batteries", "[aggregate]")
{
    Snapshot s = e1();
    s.batteries.push_back(battery("second", 53.1, -2.0, 100.0, 55.2, 150.0, 1, 0));
    const Totals& t = totals(aggregate(s));
    CHECK(t.battery_current == Value(12.3 + -2.0));
    CHECK(t.max_charge_current == Value(240.0));
    CHECK(t.max_discharge_current == Value(350.0));
    CHECK(t.charge_allowed);
    CHECK_FALSE(t.discharge_allowed);
}

TEST_CASE("the phase count must be a whole number 0..3 from a system service ([RECOMMEND], §8)", "[aggregate]")
{
    Snapshot s = e1();
    SECTION("no system service") {
        s.system.reset();
        CHECK(incomplete(aggregate(s)).message() ==
              "com.victronenergy.system /Ac/ActiveIn/NumberOfPhases: no system service");
    }
    SECTION("invalid counts as 0 phases (the AC input is down)") {
        s.system->phase_count = Value::invalid();
        CHECK(totals(aggregate(s)).phases.empty());
    }
    SECTION("missing counts as 0 phases") {
        s.system->phase_count = Reading::missing();
        CHECK(totals(aggregate(s)).phases.empty());
    }
    SECTION("stale is not trusted") {
        s.system->phase_count = Reading::stale(Value(3));
        CHECK(incomplete(aggregate(s)).reason == "stale");
    }
    SECTION("out of range or not whole") {
        auto bad = GENERATE(Value(4), Value(-1), Value(1.5), Value("3"));
        s.system->phase_count = bad;
        CHECK_THAT(incomplete(aggregate(s)).reason, Catch::StartsWith("not a"));
    }
    SECTION("a double that is whole") {
        s.system->phase_count = 2.0;
        CHECK(totals(aggregate(s)).phases.size() == 2);
    }
    SECTION("zero") {
        s.system->phase_count = 0;
        CHECK(totals(aggregate(s)).phases.empty());
    }
    SECTION("re-read every tick: fewer phases than published") {
        s.system->phase_count = 1;
        const Totals& t = totals(aggregate(s));
        REQUIRE(t.phases.size() == 1);
        CHECK(t.phases[0].setpoint == Value(-700));
    }
}

TEST_CASE("without a vebus service iv and the Multi's per-phase values are invalid", "[aggregate]")
{
    Snapshot s = e1();
    s.vebus.reset();
    const Totals& t = totals(aggregate(s));
    CHECK(t.inverter_current.is_invalid());
    REQUIRE(t.phases.size() == 3);
    CHECK(t.phases[0].setpoint.is_invalid());
    CHECK(t.phases[0].vebus_power.is_invalid());
    CHECK(t.phases[0].system_power == Value(120.5));
}

TEST_CASE("stale per-phase values and vebus current pass through as invalid", "[aggregate]")
{
    Snapshot s = e1();
    s.vebus->dc_current = Reading::stale(-40.2);
    s.system->active_in_power[2] = Reading::stale(15.0);
    const Totals& t = totals(aggregate(s));
    CHECK(t.inverter_current.is_invalid());
    CHECK(t.phases[2].system_power.is_invalid());
}
