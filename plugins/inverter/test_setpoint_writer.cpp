// The setpoint writer (§18.1, §18.4, §18.7) in virtual time against a fake
// Multi that applies each SetValue in the order sent (one bus connection) and
// answers after a delay per phase.
#include "inverter_test_support.hpp"

#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <moat/log.hpp>

#include "setpoint_writer.hpp"

using namespace moat;
using namespace moat::inverter;
using namespace moat::inverter::test;
using namespace std::chrono_literals;

namespace {

struct FakeMulti final : SetpointIo {
    explicit FakeMulti(Clock& c) : clock(c), t0(c.now()) {}
    Clock& clock;
    TimePoint t0;
    GuardDecision guard = allowed();
    std::string vebus_name = "com.victronenergy.vebus.ttyS4";  ///< what the system service names
    static GuardDecision allowed() {
        GuardDecision d;
        d.inputs_ok = d.may_write = d.may_write_safe = true;
        return d;
    }
    std::map<std::string, double> value;     ///< what the Multi holds per path
    std::map<std::string, Duration> delay;   ///< how long its reply to a path takes
    std::map<std::string, int> reply;        ///< its reply per path (default 0)
    std::vector<std::string> sent;           ///< "<t> L<n> <value>"
    int changes = 0;

    GuardDecision guard_now() override { return guard; }
    std::string vebus() override { return vebus_name; }
    Task<int> set_value(std::string service, std::string path, double v, Duration) override {
        if (service != "com.victronenergy.vebus.ttyS4") co_return -1;
        value[path] = v;
        sent.push_back(fmt::format("{:.1f} {} {:.0f}", std::chrono::duration<double>(clock.now() - t0).count(),
                                   path.substr(6, 2), v));
        if (auto it = delay.find(path); it != delay.end()) co_await sleep_for(it->second);
        auto r = reply.find(path);
        co_return r == reply.end() ? 0 : r->second;
    }
    void fault_point(const char*) override {}
    void changed() override { ++changes; }
    std::vector<double> setpoints() {
        return {value["/Hub4/L1/AcPowerSetpoint"], value["/Hub4/L2/AcPowerSetpoint"], value["/Hub4/L3/AcPowerSetpoint"]};
    }
};

struct WriterRig {
    WriterRig() { loop.set_clock(clock); }
    Loop loop;
    VirtualClock clock{loop};
    FakeMulti multi{clock};
    SetpointWriter writer{multi, clock, Logger("inverter", null_sink()), false, 2s};
    bool inputs_ok = true;

    /// The refresh (interval 1 s) beside `script`, at most 20 s of virtual time.
    void run(std::function<Task<void>()> script) {
        run_for(loop, clock, 20s, [&]() -> Task<void> {
            auto body = [&](TaskGroup& g) -> Task<void> {
                g.spawn(writer.refresh(1s, [this] { return inputs_ok; }), "refresh");
                auto s = script();
                co_await s;
                g.cancel();
            };
            co_await with_group(body);
        });
    }
};

std::vector<double> all(double v) { return {v, v, v}; }

} // namespace

TEST_CASE("setpoints: a refresh still going when the safe setpoints are written never overwrites them",
          "[inverter][writer][safety]") {
    WriterRig rig;
    rig.multi.delay["/Hub4/L1/AcPowerSetpoint"] = 1s;  // the Multi is slow to answer L1
    rig.run([&]() -> Task<void> {
        co_await rig.writer.write(all(-300), 10s);  // 3 s of replies
        // The refresh begins (1 s after the write) and waits for L1's answer...
        while (rig.multi.sent.size() < 4) co_await sleep_for(100ms);
        // ...when the inputs are lost: the safe setpoints, every phase at once.
        rig.inputs_ok = false;
        rig.multi.delay.clear();
        co_await rig.writer.write_safe(all(0));
        CHECK(rig.writer.safe_state() == "reached");
        co_await sleep_for(3s);  // the refresh's L1 reply comes, and the refresh gets its turn
    });
    CHECK(rig.multi.setpoints() == all(0));
    // The refresh sent its L1 before the safe write and nothing after it.
    REQUIRE(rig.multi.sent.size() == 7);
    INFO(fmt::format("{}", fmt::join(rig.multi.sent, " / ")));
    CHECK(rig.multi.sent[3].ends_with("L1 -300"));
    CHECK(rig.multi.sent[6].ends_with("L3 0"));
}

TEST_CASE("setpoints: the newest write wins over one still going phase by phase", "[inverter][writer]") {
    WriterRig rig;
    rig.multi.delay["/Hub4/L1/AcPowerSetpoint"] = 500ms;
    rig.run([&]() -> Task<void> {
        auto body = [&](TaskGroup& g) -> Task<void> {
            g.spawn(rig.writer.write(all(-900), 10s), "older");
            co_await sleep_for(200ms);
            rig.multi.delay.clear();
            std::vector<double> newer{-100, -200, -300};  // no braced list inside co_await (g++ 12)
            co_await rig.writer.write(newer, 10s);
        };
        co_await with_group(body);
    });
    CHECK(rig.multi.setpoints() == std::vector<double>{-100, -200, -300});
    CHECK(rig.writer.last_written() == std::vector<double>{-100, -200, -300});
}

TEST_CASE("setpoints: the refresh re-writes the last setpoints after the interval, and not while inputs are lost",
          "[inverter][writer]") {
    WriterRig rig;
    rig.run([&]() -> Task<void> {
        co_await rig.writer.write(all(-500), 10s);
        co_await sleep_for(2200ms);
        CHECK(rig.multi.sent.size() == 3 + 2 * 3);  // at 1 s and 2 s (checked every 250 ms)
        rig.inputs_ok = false;
        auto n = rig.multi.sent.size();
        co_await sleep_for(3s);
        CHECK(rig.multi.sent.size() == n);
    });
}

TEST_CASE("setpoints: a write the guard keeps back is made up for once allowed; a safe write it forbids is not reached",
          "[inverter][writer][guard]") {
    WriterRig rig;
    rig.multi.guard.may_write = rig.multi.guard.may_write_safe = false;
    rig.multi.guard.write_problem = "ESS mode 1, not 3";
    rig.run([&]() -> Task<void> {
        co_await rig.writer.write(all(-400), 10s);
        CHECK(rig.multi.sent.empty());
        co_await rig.writer.write_safe(all(0));
        CHECK(rig.writer.safe_state() == "not reached: not written: ESS mode 1, not 3");
        rig.multi.guard.may_write = rig.multi.guard.may_write_safe = true;
        co_await sleep_for(500ms);
        CHECK(rig.multi.setpoints() == all(0));  // the newest kept-back write: the safe one
    });
}

TEST_CASE("setpoints: a safe write names each phase that was not confirmed", "[inverter][writer][safety]") {
    WriterRig rig;
    rig.multi.reply["/Hub4/L2/AcPowerSetpoint"] = -1;
    rig.multi.reply["/Hub4/L3/AcPowerSetpoint"] = 2;
    rig.run([&]() -> Task<void> {
        co_await rig.writer.write_safe(all(0));
        co_return;
    });
    CHECK(rig.writer.safe_state() ==
          "not reached: L2 not confirmed: no reply within 2.0 s, an error reply or no /Hub4/L2/AcPowerSetpoint on "
          "com.victronenergy.vebus.ttyS4, L3 refused by com.victronenergy.vebus.ttyS4 (2)");
}

TEST_CASE("setpoints: with the system service gone the safe setpoints go to the last known Multi",
          "[inverter][writer][safety]") {
    WriterRig rig;
    rig.run([&]() -> Task<void> {
        co_await rig.writer.write(all(-900), 10s);
        rig.inputs_ok = false;
        rig.multi.vebus_name.clear();  // the system service is gone: nobody names the Multi
        rig.multi.guard.may_write = false;
        rig.multi.guard.write_problem = "no com.victronenergy.system service (it names the Multi's service)";
        co_await rig.writer.write(all(-800), 10s);  // a mode's write is refused...
        CHECK(rig.multi.setpoints() == all(-900));
        co_await rig.writer.write_safe(all(0));  // ...the safe setpoints are not
        CHECK(rig.writer.safe_state() == "reached");
        CHECK(rig.multi.setpoints() == all(0));
    });
}

TEST_CASE("setpoints: no Multi ever known: the safe state is not reached, and says why", "[inverter][writer][safety]") {
    WriterRig rig;
    rig.multi.vebus_name.clear();
    rig.multi.guard.may_write = false;
    rig.multi.guard.write_problem = "no com.victronenergy.system service (it names the Multi's service)";
    rig.run([&]() -> Task<void> { co_await rig.writer.write_safe(all(0)); });
    CHECK(rig.writer.safe_state() ==
          "not reached: not written: no com.victronenergy.system service (it names the Multi's service)");
    CHECK(rig.multi.sent.empty());
}
