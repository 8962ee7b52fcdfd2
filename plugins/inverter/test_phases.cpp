// Phase distribution: balance (§9.2), to_phases (§9.1), phase assignment (§7.2).
#include "inverter_test_support.hpp"

#include "phases.hpp"

using namespace moat::inverter;
using namespace moat::inverter::test;

TEST_CASE("balance: the spec's vectors", "[inverter][balance]") {
    struct Case {
        std::vector<double> in;
        Bound min, max;
        std::vector<double> out;
    };
    const Case cases[] = {
        {{100, 200, 300}, {}, {}, {100, 200, 300}},
        {{-100, 200, 300}, {}, {}, {0, 150, 250}},
        {{300, -100, -50}, {}, {}, {150, 0, 0}},
        {{-300, 100, 50}, {}, {}, {-150, 0, 0}},
        {{-100, -200, -300}, {}, {}, {-100, -200, -300}},
        {{0, 0, 0}, {}, {}, {0, 0, 0}},
        {{1000, -200, -200}, {}, {}, {600, 0, 0}},
        {{-50, 10, 500}, {}, {}, {0, 0, 460}},
        {{200, -500}, {}, {}, {0, -300}},
        {{100}, {}, {}, {100}},
        {{-100}, {}, {}, {-100}},
        {{5000, 4000, 1000}, -4500, 4500, {4500, 4250, 1250}},
        {{6000, 1000, 500}, -4500, 4500, {4500, 1750, 1250}},
        {{-6000, -1000, -500}, -4500, 4500, {-4500, -1750, -1250}},
        {{-6000, -1000, 200}, -4500, 4500, {-4500, -1600, -700}},
        {{4000, 4000, 4000}, -3000, 3000, {3000, 3000, 3000}},  // the sum drops 12000 -> 9000
        {{2000, -100, -1500}, -1000, 1000, {400, 0, 0}},
        {{1500, 1500, -100}, -1000, 1000, {1000, 1000, 900}},
        {{3000, 1000, 0}, -4500, 4500, {3000, 1000, 0}},
        {{1000, 1000, 1000}, -4500, std::vector<double>{500, 4500, 4500}, {500, 1250, 1250}},
    };
    for (auto& c : cases) {
        INFO("input " << Catch::Detail::stringify(c.in));
        CHECK_THAT(balance(c.in, c.min, c.max), approx(c.out, 1e-9));
    }
    CHECK(balance({}).empty());
}

TEST_CASE("balance: never charges on one phase while inverting on another", "[inverter][balance]") {
    for (auto in : std::vector<std::vector<double>>{{-1, 2, 3}, {5, -7, 1}, {-3000, 2999, 2}, {0.5, -0.25, -0.25}}) {
        auto out = balance(in, -4500, 4500);
        bool pos = false, neg = false;
        for (double v : out) (v > 0 ? pos : neg) |= v != 0;
        CHECK_FALSE((pos && neg));
    }
}

TEST_CASE("to_phases: the spec's vectors", "[inverter][balance]") {
    struct Case {
        double p;
        PhaseValues cons;
        double cap;
        std::vector<double> out;
    };
    const Case cases[] = {
        {1200, {800, 300, 100}, 4500, {800, 300, 100}},
        {600, {800, 300, 100}, 4500, {550, 50, 0}},
        {0, {800, 300, 100}, 4500, {0, 0, 0}},
        {-1500, {200, 200, 200}, 4500, {-500, -500, -500}},
        {-1500, {900, 100, 100}, 4500, {0, -750, -750}},
        {9000, {3000, 500, 500}, 3000, {3000, 3000, 3000}},
        {-9000, {100, 100, 100}, 2500, {-2500, -2500, -2500}},
        {2200, {2000, 100, 100}, 1000, {1000, 600, 600}},
    };
    for (auto& c : cases) {
        INFO("p " << c.p << " cap " << c.cap);
        Inputs in = defaults();
        in.consumption = c.cons;
        SystemParams sp;
        sp.p_per_phase = c.cap;
        CHECK_THAT(to_phases(c.p, in, sp), approx(c.out, 1e-9));
    }
}

TEST_CASE("to_phases: two phases use only theirs", "[inverter][balance]") {
    Inputs in = defaults();
    in.n_phase = 2;
    in.consumption = {700, 100, 5000};  // L3 does not exist
    CHECK_THAT(to_phases(800, in, SystemParams{}), approx({700, 100}, 1e-9));
}

TEST_CASE("assign_phases (§7.2)", "[inverter][phase]") {
    Inputs in = defaults();
    SystemParams sp;
    CHECK_THAT(assign_phases(1500, 2, in, sp), approx({0, 1500, 0}, 0));       // S15
    CHECK_THAT(assign_phases(1500, 3, in, sp), approx({0, 0, 1500}, 0));
    CHECK_THAT(assign_phases(1500, 0, in, sp), approx({1500, 0, 0}, 0));       // 0 means phase 1
    CHECK_THAT(assign_phases(1500, std::nullopt, in, sp), approx(all3(500), 1e-9));  // distributed
    // One phase on it: no cap (as in the original; only to_phases caps).
    CHECK_THAT(assign_phases(6000, 1, in, sp), approx({6000, 0, 0}, 0));
    CHECK_THROWS_AS(assign_phases(1500, 4, in, sp), std::out_of_range);
    in.n_phase = 1;
    CHECK_THAT(assign_phases(6000, std::nullopt, in, sp), approx({6000}, 0));  // single phase: all of it, uncapped
    CHECK_THROWS_AS(assign_phases(1500, 2, in, sp), std::out_of_range);
}
