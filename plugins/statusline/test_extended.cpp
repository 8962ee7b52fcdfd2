// The extended line: the original line, the grid power and the controller.
#include <catch2/catch.hpp>

#include "extended.hpp"
#include "line.hpp"
#include "test_examples.hpp"

using namespace statusline_test;

namespace {

Snapshot with_grid(std::initializer_list<Reading> phases)
{
    Snapshot s = e1();
    std::size_t i = 0;
    for (const Reading& r : phases)
        s.system->grid_power[i++] = r;
    return s;
}

Controller controller(Reading mode, Reading power = {}, Reading current = {}, Reading dest_soc = {})
{
    Controller c;
    c.service = "com.victronenergy.moatinv.main";
    c.mode = std::move(mode);
    c.power = std::move(power);
    c.current = std::move(current);
    c.dest_soc = std::move(dest_soc);
    return c;
}

} // namespace

TEST_CASE("the grid part: each published phase and the sum", "[extended]")
{
    CHECK(grid_part(with_grid({Value(-17.4), Value(-20), Value(-15.2)})) == "Grid   -53W (-17/-20/-15)");
    CHECK(grid_part(with_grid({Value(1200.0)})) == "Grid  1200W (1200)");
    SECTION("an invalid phase shows --- and is left out of the sum") {
        CHECK(grid_part(with_grid({Value(100.0), Value::invalid(), Value(50.0)})) == "Grid   150W (100/---/50)");
    }
    SECTION("nothing published, or no system service") {
        CHECK(grid_part(e1()) == "Grid ---");
        Snapshot s = e1();
        s.system.reset();
        CHECK(grid_part(s) == "Grid ---");
        CHECK(grid_part(with_grid({Value::invalid()})) == "Grid   ---W (---)");
    }
}

TEST_CASE("the controller part: the mode and its target", "[extended]")
{
    Snapshot s = e1();
    CHECK(controller_part(s).empty());
    s.controller = controller(Value("p_grid"), Value(-50.0));
    CHECK(controller_part(s) == "p_grid -50W");
    s.controller = controller(Value("p_inv"), Value(1200));
    CHECK(controller_part(s) == "p_inv 1200W");
    s.controller = controller(Value("i_batt"), {}, Value(12.25));
    CHECK(controller_part(s) == "i_batt 12.2A");
    s.controller = controller(Value("soc"), {}, {}, Value(0.8));
    CHECK(controller_part(s) == "soc 0.80");
    s.controller = controller(Value("off"), Value(0.0));
    CHECK(controller_part(s) == "off");
    s.controller = controller(Value("p_grid"));  // no target published
    CHECK(controller_part(s) == "p_grid");
    s.controller = controller(Reading::missing());
    CHECK(controller_part(s) == "controller ---");
}

TEST_CASE("strings from the bus never break the line (found by fuzzing)", "[extended]")
{
    CHECK(single_line("a\nb\r\x1b[2J\x7f") == "a?b??[2J?");
    Snapshot s = e1();
    s.controller = controller(Value("hacked\nmode"));
    CHECK(controller_part(s) == "hacked?mode");
    REQUIRE(s.vebus);
    s.vebus->ac_power_setpoint[0] = Value("-700\n");  // a phase value that is not a number: the raw form
    const std::string line = status_line(s);
    CHECK(line.find('\n') == std::string::npos);
    CHECK(line.find("-700?") != std::string::npos);
    CHECK(extend_line(line, s).find('\n') == std::string::npos);
}

TEST_CASE("the extended line starts with the original line, unchanged", "[extended]")
{
    Snapshot s = with_grid({Value(-17.0), Value(-20.0), Value(-15.0)});
    s.controller = controller(Value("p_grid"), Value(-50.0));
    const std::string original = status_line(s);
    CHECK(extend_line(original, s) == original + "  Grid   -52W (-17/-20/-15)  p_grid -50W");
    Snapshot no_controller = with_grid({Value(5.0)});
    CHECK(extend_line("x", no_controller) == "x  Grid     5W (5)");
}

TEST_CASE("a missing or invalid phase count is 0 phases: the DC part still shows", "[extended][line]")
{
    Snapshot s = e1();
    s.system->phase_count = Reading::missing();
    CHECK(status_line(s) == "53.15+2.1V  Sol  2840W  52.5A <100  Bat  12.3A >-200.0<140.0  Inv -40.2A ");
    s.system->phase_count = Value::invalid();
    CHECK(status_line(s) == "53.15+2.1V  Sol  2840W  52.5A <100  Bat  12.3A >-200.0<140.0  Inv -40.2A ");
}

TEST_CASE("line formats by name", "[extended]")
{
    CHECK(parse_line_format("original") == LineFormat::original);
    CHECK(parse_line_format("extended") == LineFormat::extended);
    CHECK_FALSE(parse_line_format("fancy"));
}
