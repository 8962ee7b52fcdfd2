// PV maximum tracking (§13.2).
#include "inverter_test_support.hpp"

#include "pv_tracker.hpp"

using namespace moat::inverter;

TEST_CASE("PV maximum: rises at once, decays by 1/20 per update", "[inverter][pv]") {
    PvTracker pv(0.4);
    CHECK(pv.limits().i_pv_max == 0);
    CHECK_FALSE(pv.update(40));
    CHECK(pv.limits().i_pv_max == 40);
    pv.update(20);
    CHECK(pv.limits().i_pv_max == Approx(39));
    for (int i = 0; i < 200; ++i) pv.update(20);
    CHECK(pv.limits().i_pv_max == Approx(20).margin(1e-3));
    CHECK(pv.limits().pv_margin == 0.4);
}

TEST_CASE("PV maximum: 'went down too fast' needs i_pv_max > 1000 ([QUIRK, literal])", "[inverter][pv][quirk]") {
    PvTracker pv(0.4);
    pv.update(900);
    CHECK_FALSE(pv.update(10));  // a collapse from 900 A: only decays
    CHECK(pv.limits().i_pv_max == Approx(855.5));
    PvTracker big(0.4);
    big.update(1200);
    CHECK(big.update(240));  // 240 < 0.4 * 1200
    CHECK(big.limits().pv_margin == Approx(0.2));
    CHECK(big.limits().i_pv_max == 1200);
}
