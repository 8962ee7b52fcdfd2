// The loop's boundaries: exceptions escaping posted functions and timer
// callbacks go to their owner (a plugin instance run) or to the handler for
// core code, never through libuv's C frames.
#include <catch2/catch.hpp>

#include "recording_owner.hpp"

#include "moat/task.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace moat;
using namespace std::chrono_literals;

namespace {

using test::RecordingOwner;

/// Runs in a fiber owned by `owner`; posts and schedules what throws.
Task<void> owned_work(std::shared_ptr<LoopOwner> owner, Loop& loop, Timer& timer) {
    detail::Fiber& f = co_await detail::this_fiber();
    f.owner = owner;
    loop.post([] { throw std::runtime_error("from a post"); });
    timer = Timer(loop.clock(), loop.clock().now() + 1ms, [] { throw std::runtime_error("from a timer"); });
    co_await sleep_for(20ms);
}

} // namespace

TEST_CASE("callbacks posted or scheduled by an owner's code fail that owner", "[loop]") {
    Loop loop;
    auto owner = std::make_shared<RecordingOwner>();
    Timer timer;
    run_until_complete(loop, owned_work(owner, loop, timer));
    // Both reach the owner. Which comes first depends on how long the loop
    // takes to get going: under qemu the 1 ms timer is due before the post runs.
    auto failures = owner->failures;
    std::sort(failures.begin(), failures.end());
    CHECK(failures == std::vector<std::string>{"a posted function: from a post", "a timer callback: from a timer"});
}

TEST_CASE("children spawned in an owned fiber inherit its owner", "[loop]") {
    Loop loop;
    auto owner = std::make_shared<RecordingOwner>();
    auto body = [&](TaskGroup& g) -> Task<void> {
        detail::Fiber& f = co_await detail::this_fiber();
        f.owner = owner;
        // No captures: the child outlives this body's frame (and its lambdas).
        auto child = [](Loop& l) -> Task<void> {
            l.post([] { throw std::runtime_error("from a child"); });
            co_await sleep_for(5ms);
        };
        g.spawn(child(loop), "child");
    };
    auto t = with_group(body);
    run_until_complete(loop, std::move(t));
    CHECK(owner->failures == std::vector<std::string>{"a posted function: from a child"});
}

TEST_CASE("an unowned callback's exception goes to the handler with what posted it", "[loop]") {
    Loop loop;
    std::vector<std::string> seen;
    loop.on_unowned_failure([&](std::exception_ptr e, const char* where, const std::string& running) {
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            seen.push_back(std::string(where) + " by " + running + ": " + x.what());
        }
    });
    auto work = [&]() -> Task<void> {
        loop.post([] { throw std::runtime_error("core bug"); });
        co_await sleep_for(5ms);
    };
    auto t = work();
    run_until_complete(loop, std::move(t), "core task");
    CHECK(seen == std::vector<std::string>{"a posted function by core task: core bug"});
}

TEST_CASE("without a handler, an unowned callback's exception ends Loop::run", "[loop]") {
    Loop loop;
    Timer t(loop.clock(), loop.clock().now(), [] { throw std::runtime_error("timer bug"); });
    CHECK_THROWS_WITH(loop.run(), "timer bug");
    loop.post([] { throw std::logic_error("post bug"); });
    CHECK_THROWS_WITH(loop.run(), "post bug");
    // and the loop runs on afterwards
    bool ran = false;
    loop.post([&] { ran = true; });
    loop.run();
    CHECK(ran);
}

TEST_CASE("virtual time reports a throwing timer callback from advance()", "[loop]") {
    Loop loop;
    VirtualClock clock(loop);
    loop.set_clock(clock);
    Timer t(clock, clock.now() + 1s, [] { throw std::runtime_error("virtual timer bug"); });
    CHECK_THROWS_WITH(clock.advance(2s), "virtual timer bug");
}

TEST_CASE("a real-clock timer armed after a stall in the same turn never fires early", "[loop]") {
    Loop loop;
    TimePoint when{}, fired{};
    Timer timer;
    loop.post([&] {
        // A long callback: libuv's cached loop time now lags 150 ms behind.
        std::this_thread::sleep_for(150ms);
        when = loop.clock().now() + 100ms;
        timer = Timer(loop.clock(), when, [&] { fired = loop.clock().now(); });
    });
    // Other work keeps the loop turning (no poll wait that would hide the lag).
    std::function<void()> spin = [&] {
        if (fired == TimePoint{}) loop.post(spin);
    };
    loop.post(spin);
    loop.run();
    REQUIRE(fired != TimePoint{});
    CHECK(fired >= when);
}
