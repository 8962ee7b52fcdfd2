// Calibration guards and the capacity figures derived from the configuration.
#include "calibration.hpp"
#include "test_battery_support.hpp"

using namespace moat::bms::battery;
using namespace moat::bms::battery::test;
using Catch::Detail::Approx;
using Catch::Matchers::Contains;

namespace {
double value(const Calibrated& c) {
    REQUIRE(std::holds_alternative<double>(c));
    return std::get<double>(c);
}
std::string refusal(const Calibrated& c) {
    REQUIRE(std::holds_alternative<std::string>(c));
    return std::get<std::string>(c);
}
} // namespace

TEST_CASE("calibrate_scale: the factor from a reference, and its guards") {
    CHECK(value(calibrate_scale(0.0013, 0, 52.0, 53.04, 1)) == Approx(0.0013 * 1.02));
    CHECK(value(calibrate_scale(-0.000125, 0.1, 10.1, 12.1, 1)) == Approx(-0.000125 * 1.2));  // offset subtracted from both
    CHECK_THAT(refusal(calibrate_scale(0.0013, 0, std::nullopt, 53, 1)), Contains("no reading"));
    CHECK_THAT(refusal(calibrate_scale(0.0013, 0, std::nan(""), 53, 1)), Contains("no reading"));
    CHECK_THAT(refusal(calibrate_scale(0.0013, 0.1, 0.9, 2, 1)), Contains("too small"));  // |0.9 − 0.1| < 1
    CHECK_THAT(refusal(calibrate_scale(0.0013, 0, 20, 41, 1)), Contains("outside [0.5, 2]"));
    CHECK_THAT(refusal(calibrate_scale(0.0013, 0, 20, 9.9, 1)), Contains("outside [0.5, 2]"));
    CHECK_THAT(refusal(calibrate_scale(0.0013, 0, 20, -20, 1)), Contains("outside [0.5, 2]"));  // a sign flip
    CHECK(value(calibrate_scale(1, 0, 20, 40, 1)) == 2);   // the edges are allowed
    CHECK(value(calibrate_scale(1, 0, 20, 10, 1)) == 0.5);
}

TEST_CASE("external correction: reference over the cell sum") {
    CHECK(value(external_correction(52.88, 52.08)) == Approx(52.08 / 52.88));
    CHECK_THAT(refusal(external_correction(std::nullopt, 52)), Contains("no cell voltages"));
    CHECK_THAT(refusal(external_correction(0.5, 0.5)), Contains("below 1 V"));
    CHECK_THAT(refusal(external_correction(52.88, 200)), Contains("outside"));
}

TEST_CASE("installed and consumed capacity use batt.u.nom, else n × cell.u.nom") {
    BatteryConfig c = bms_cfg();  // no batt.u.nom, cell.u.nom 3.2, 16 cells: 51.2 V
    CHECK(*nominal_pack_volts(c) == Approx(51.2));
    CHECK(*installed_capacity_ah(c) == Approx(50e6 / 3600 / 51.2));
    WorkRecord w{.sum = 25e6, .cfg = c.cap_cur};
    CHECK(*consumed_ah(w, c) == Approx(25e6 / 3600 / 51.2));
    c.u_nom = 48;
    CHECK(*installed_capacity_ah(c) == Approx(50e6 / 3600 / 48));
    c.u_nom.reset();
    c.cell.u_nom.reset();
    CHECK_FALSE(installed_capacity_ah(c));
    CHECK_FALSE(consumed_ah(w, c));
}

TEST_CASE("a relay forced off is requested off again in a new session") {
    Battery b(bms_cfg(), Options{});
    b.link_up(at(0));
    b.force_relay(at(1), false);
    b.link_down(at(2), "EOF");
    CHECK_FALSE(b.take_relay_off_request());
    b.link_up(at(3));
    CHECK(b.relay_forced_off());
    CHECK(b.take_relay_off_request());
    b.release_relay(at(4));
    b.link_down(at(5), "EOF");
    b.link_up(at(6));
    CHECK_FALSE(b.take_relay_off_request());
}
