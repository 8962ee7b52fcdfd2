#include <catch2/catch.hpp>

#include "moat/fault.hpp"

#include <string>

using namespace moat;

namespace {
/// How many passes through `point` of `instance` go by before it throws (0 = never in 100).
int throws_at(FaultPoints& f, const char* instance, const char* point) {
    for (int i = 1; i <= 100; ++i) {
        try {
            f.pass(instance, point);
        } catch (const InjectedFault&) {
            return i;
        }
    }
    return 0;
}
} // namespace

TEST_CASE("a fault point fails on the pass asked for, once per process", "[fault]") {
    FaultPoints f("inverter:refresh@3, inverter:guard ,meter-2:poll.block@1");
    CHECK_FALSE(f.empty());
    CHECK(f.describe() == "inverter:refresh@3, inverter:guard@1, meter-2:poll.block@1");
    CHECK(throws_at(f, "inverter", "refresh") == 3);
    CHECK(throws_at(f, "inverter", "refresh") == 0);  // once: a restarted plugin runs on
    CHECK(throws_at(f, "inverter", "guard") == 1);
    CHECK(throws_at(f, "meter", "poll.block") == 0);  // another instance
    CHECK(throws_at(f, "meter-2", "poll.block") == 1);
    CHECK(throws_at(f, "inverter", "supervisor") == 0);
}

TEST_CASE("the fault's message names instance, point and pass", "[fault]") {
    FaultPoints f("inv:write@2");
    f.pass("inv", "write");
    try {
        f.pass("inv", "write");
        FAIL("no fault");
    } catch (const InjectedFault& e) {
        CHECK(std::string(e.what()) == "injected fault at inv:write (pass 2, MOAT_FAULT)");
    }
}

TEST_CASE("no spec, no faults", "[fault]") {
    FaultPoints none, empty(""), commas(" , ");
    CHECK(none.empty());
    CHECK(empty.empty());
    CHECK(commas.empty());
    CHECK(throws_at(none, "inverter", "refresh") == 0);
}

TEST_CASE("a malformed spec is refused naming the bad part", "[fault]") {
    auto error_of = [](const char* spec) {
        try {
            FaultPoints f(spec);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("accepted");
    };
    CHECK(error_of("inverter") == "fault point 'inverter': no ':' (expected INSTANCE:POINT or INSTANCE:POINT@N)");
    CHECK(error_of("a:b, inverter:refresh@0").starts_with("fault point 'inverter:refresh@0': the pass after '@' must be"));
    CHECK(error_of("inverter:refresh@x").starts_with("fault point 'inverter:refresh@x': the pass"));
    CHECK(error_of("inverter:refresh@2x").starts_with("fault point 'inverter:refresh@2x': the pass"));
    CHECK(error_of(":refresh").starts_with("fault point ':refresh': bad instance name"));
    CHECK(error_of("inverter:").starts_with("fault point 'inverter:': bad point name"));
    CHECK(error_of("in ver:x").starts_with("fault point 'in ver:x': bad instance name"));
}
