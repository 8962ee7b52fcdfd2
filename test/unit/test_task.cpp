#include <catch2/catch.hpp>

#include "moat/task.hpp"

#include <string>
#include <vector>

using namespace moat;
using namespace std::chrono_literals;

namespace {

Task<int> answer() { co_return 42; }

Task<int> sleepy(Duration d, int v) {
    co_await sleep_for(d);
    co_return v;
}

Task<void> fail_after(Duration d, std::string msg) {
    co_await sleep_for(d);
    throw std::runtime_error(msg);
}

} // namespace

TEST_CASE("a task returns its value and runs lazily", "[task]") {
    Loop loop;
    CHECK(run_until_complete(loop, answer()) == 42);
    bool ran = false;
    // The lambda must outlive its coroutine: a temporary lambda would be
    // destroyed while the task still refers to its captures.
    auto body = [&]() -> Task<void> {
        ran = true;
        co_return;
    };
    auto t = body();
    CHECK_FALSE(ran);
    run_until_complete(loop, std::move(t));
    CHECK(ran);
}

TEST_CASE("exceptions propagate through co_await", "[task]") {
    Loop loop;
    auto outer = []() -> Task<int> {
        co_await fail_after(1ms, "boom");
        co_return 1;
    };
    CHECK_THROWS_WITH(run_until_complete(loop, outer()), "boom");
}

TEST_CASE("sleep runs on the real clock", "[task]") {
    Loop loop;
    auto start = std::chrono::steady_clock::now();
    CHECK(run_until_complete(loop, sleepy(20ms, 7)) == 7);
    CHECK(std::chrono::steady_clock::now() - start >= 20ms);
}

TEST_CASE("with_timeout fires, cancels the inner task and raises TimeoutError", "[task]") {
    Loop loop;
    bool cleaned = false, reached = false;
    auto inner = [&]() -> Task<void> {
        try {
            co_await sleep_for(10s);
            reached = true;
        } catch (const Cancelled&) {
            cleaned = true;
            throw;
        }
    };
    auto outer = [&]() -> Task<void> { co_await with_timeout(10ms, inner()); };
    auto t = outer();
    CHECK_THROWS_AS(run_until_complete(loop, std::move(t)), TimeoutError);
    CHECK(cleaned);
    CHECK_FALSE(reached);
}

TEST_CASE("with_timeout returns the value when in time", "[task]") {
    Loop loop;
    auto outer = []() -> Task<int> { co_return co_await with_timeout(1s, sleepy(1ms, 5)); };
    CHECK(run_until_complete(loop, outer()) == 5);
}

TEST_CASE("an exception in one child cancels its siblings and reaches the owner", "[task][group]") {
    Loop loop;
    std::vector<std::string> log;
    auto sibling = [&]() -> Task<void> {
        try {
            co_await sleep_for(10s);
            log.push_back("sibling finished");
        } catch (const Cancelled&) {
            log.push_back("sibling cancelled");
            throw;
        }
    };
    auto owner = [&]() -> Task<void> {
        co_await with_group([&](TaskGroup& g) -> Task<void> {
            g.spawn(sibling(), "sibling");
            g.spawn(fail_after(5ms, "child failed"), "failing");
            co_await sleep_for(10s);
            log.push_back("body finished");
        });
        log.push_back("after group");
    };
    auto start = std::chrono::steady_clock::now();
    CHECK_THROWS_WITH(run_until_complete(loop, owner()), "child failed");
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(log == std::vector<std::string>{"sibling cancelled"});
}

TEST_CASE("a group waits for all its children", "[task][group]") {
    Loop loop;
    int done = 0;
    auto child = [&](Duration d) -> Task<void> {
        co_await sleep_for(d);
        ++done;
    };
    auto owner = [&]() -> Task<void> {
        co_await with_group([&](TaskGroup& g) -> Task<void> {
            g.spawn(child(5ms));
            g.spawn(child(15ms));
            co_return;
        });
        CHECK(done == 2);
    };
    run_until_complete(loop, owner());
    CHECK(done == 2);
}

TEST_CASE("cancelling one child leaves the others running", "[task][group]") {
    Loop loop;
    bool a_cancelled = false, b_done = false;
    auto a = [&]() -> Task<void> {
        try {
            co_await sleep_for(10s);
        } catch (const Cancelled&) {
            a_cancelled = true;
            throw;
        }
    };
    auto b = [&]() -> Task<void> {
        co_await sleep_for(20ms);
        b_done = true;
    };
    auto owner = [&]() -> Task<void> {
        co_await with_group([&](TaskGroup& g) -> Task<void> {
            TaskRef ra = g.spawn(a());
            g.spawn(b());
            co_await sleep_for(5ms);
            ra.cancel();
            co_await ra.join();
            CHECK(ra.done());
        });
    };
    run_until_complete(loop, owner());
    CHECK(a_cancelled);
    CHECK(b_done);
}

TEST_CASE("a shielded cleanup can still await while its task is cancelled", "[task][shield]") {
    Loop loop;
    std::vector<std::string> log;
    auto cleanup = [&]() -> Task<void> {
        co_await sleep_for(10ms);  // would throw Cancelled without the shield
        log.push_back("cleanup done");
    };
    auto worker = [&]() -> Task<void> {
        bool cancelled = false;
        try {
            co_await sleep_for(10s);
        } catch (const Cancelled&) {
            cancelled = true;
        }
        if (cancelled) {
            co_await shielded(cleanup());
            log.push_back("rethrow");
            throw Cancelled();
        }
    };
    auto owner = [&]() -> Task<void> {
        co_await with_group([&](TaskGroup& g) -> Task<void> {
            auto r = g.spawn(worker());
            co_await sleep_for(5ms);
            r.cancel();
        });
    };
    run_until_complete(loop, owner());
    CHECK(log == std::vector<std::string>{"cleanup done", "rethrow"});
}

TEST_CASE("a shielded cleanup is bounded by its deadline", "[task][shield]") {
    Loop loop;
    auto forever = []() -> Task<void> { co_await sleep_for(1h); };
    auto owner = [&]() -> Task<void> {
        co_await shielded(forever(), loop.clock().now() + 20ms);
    };
    CHECK_THROWS_AS(run_until_complete(loop, owner()), TimeoutError);
}

TEST_CASE("a cancelled scope raises at the next checkpoint", "[task]") {
    Loop loop;
    int steps = 0;
    auto busy = [&]() -> Task<void> {
        for (;;) {
            ++steps;
            co_await checkpoint();
        }
    };
    auto owner = [&]() -> Task<void> {
        co_await with_group([&](TaskGroup& g) -> Task<void> {
            auto r = g.spawn(busy());
            co_await sleep_for(2ms);
            r.cancel();
        });
    };
    run_until_complete(loop, owner());
    CHECK(steps > 0);
}

TEST_CASE("an event wakes its waiters and honours cancellation", "[task][event]") {
    Loop loop;
    Event ev;
    int woke = 0;
    auto waiter = [&]() -> Task<void> {
        co_await ev.wait();
        ++woke;
    };
    auto owner = [&]() -> Task<void> {
        co_await with_group([&](TaskGroup& g) -> Task<void> {
            g.spawn(waiter());
            g.spawn(waiter());
            co_await sleep_for(2ms);
            CHECK(woke == 0);
            ev.set();
        });
    };
    run_until_complete(loop, owner());
    CHECK(woke == 2);

    Event never;
    auto stuck = [&]() -> Task<void> { co_await with_timeout(5ms, [&]() -> Task<void> { co_await never.wait(); }()); };
    CHECK_THROWS_AS(run_until_complete(loop, stuck()), TimeoutError);
}

TEST_CASE("the virtual clock runs an hour of sleeps in no time", "[task][clock]") {
    Loop loop;
    VirtualClock clock(loop);
    loop.set_clock(clock);
    int ticks = 0;
    bool finished = false;
    auto ticker = [&]() -> Task<void> {
        for (int i = 0; i < 3600; ++i) {
            co_await sleep_for(1s);
            ++ticks;
        }
        finished = true;
    };
    auto owner = [&]() -> Task<void> {
        co_await with_group([&](TaskGroup& g) -> Task<void> {
            g.spawn(ticker());
            co_return;
        });
    };
    auto t = owner();
    auto h = t.handle();
    detail::RootRun run(loop, "test");
    h.promise().fiber = &run.fiber;
    loop.post_resume(&run.fiber, h);
    auto t0 = clock.now();
    clock.advance(30min);
    CHECK(ticks == 1800);
    clock.advance(30min);
    CHECK(ticks == 3600);
    CHECK(finished);
    CHECK(clock.now() - t0 == 1h);
    loop.use_real_clock();
}
