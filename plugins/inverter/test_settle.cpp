// The settle loop (§12, §20).
#include "inverter_test_support.hpp"

#include "settle.hpp"

using namespace moat::inverter;

TEST_CASE("settle: 1000, 1400, 1480, 1500 stops after 1500 with 4 triggers", "[inverter][settle]") {
    Settle s(1000, 100);  // the reading right after the write
    CHECK_FALSE(s.add(1400));
    CHECK_FALSE(s.add(1480));  // first change < 100
    CHECK(s.add(1500));        // second in a row
    CHECK(s.settled());
    CHECK(s.readings() == 3);
    CHECK(s.triggers() == 4);
}

TEST_CASE("settle: a larger change restarts the count", "[inverter][settle]") {
    Settle s(0, 100);
    CHECK_FALSE(s.add(50));
    CHECK_FALSE(s.add(300));
    CHECK_FALSE(s.add(310));
    CHECK(s.add(320));
}

TEST_CASE("settle: rising by 200 per reading ends after 10 loop iterations", "[inverter][settle]") {
    Settle s(0, 100);
    int iterations = 0;
    for (double r = 200;; r += 200) {
        ++iterations;
        if (s.add(r)) break;
    }
    CHECK(iterations == 10);
    CHECK(s.readings() + 1 == 11);  // 11 readings including the first
    CHECK(s.triggers() == 11);
    CHECK_FALSE(s.settled());
}
