// A fix that is turned back again and again is a write war, not a loop.
#include "write_war.hpp"

#include <catch2/catch.hpp>

using namespace moat::critical;
using namespace std::chrono_literals;

namespace {
const WriteWar::TimePoint t0{std::chrono::hours(1)};
}

TEST_CASE("three fixes turned back within the window make a war", "[critical][war]") {
    WriteWar w(WriteWarPolicy{10s, 3});
    auto t = t0;
    CHECK_FALSE(w.turned_back(t));  // the first bad value: nothing fixed yet
    for (int i = 1; i <= 2; ++i) {
        w.fixed(t += 1s);
        CHECK_FALSE(w.turned_back(t += 2s));
        CHECK(w.turn_backs() == i);
        CHECK(w.may_fix());
    }
    w.fixed(t += 1s);
    CHECK(w.turned_back(t += 2s));
    CHECK(w.at_war());
    CHECK_FALSE(w.may_fix());
    CHECK(w.turned_back(t += 60s));  // stays at war, whatever comes
}

TEST_CASE("a bad value long after a fix starts counting afresh", "[critical][war]") {
    WriteWar w(WriteWarPolicy{10s, 3});
    auto t = t0;
    w.fixed(t);
    CHECK_FALSE(w.turned_back(t += 5s));
    w.fixed(t += 1s);
    CHECK_FALSE(w.turned_back(t += 5s));
    CHECK(w.turn_backs() == 2);
    w.fixed(t += 1s);
    CHECK_FALSE(w.turned_back(t += 11s));  // outside the window: a new, unrelated change
    CHECK(w.turn_backs() == 0);
    CHECK(w.may_fix());
}

TEST_CASE("a bad value without a fix in between neither counts nor resets", "[critical][war]") {
    WriteWar w(WriteWarPolicy{10s, 3});
    auto t = t0;
    w.fixed(t);
    CHECK_FALSE(w.turned_back(t += 1s));
    CHECK(w.turn_backs() == 1);
    CHECK_FALSE(w.turned_back(t += 1s));  // seen again (a re-read) without a new fix
    CHECK_FALSE(w.turned_back(t += 60s));
    CHECK(w.turn_backs() == 1);
    w.fixed(t += 1s);
    CHECK_FALSE(w.turned_back(t += 1s));
    CHECK(w.turn_backs() == 2);
}

TEST_CASE("calm ends a war", "[critical][war]") {
    WriteWar w(WriteWarPolicy{10s, 1});
    w.fixed(t0);
    CHECK(w.turned_back(t0 + 1s));
    w.calm();
    CHECK(w.may_fix());
    CHECK(w.turn_backs() == 0);
    CHECK_FALSE(w.turned_back(t0 + 2s));
}
