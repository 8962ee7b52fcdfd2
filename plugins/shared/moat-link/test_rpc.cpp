// The RPC engine in virtual time: replies, remote errors, timeouts as link
// faults, unknown and duplicate replies, link end, the peer's requests.
#include "rpc.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace moat;
using namespace moat::bms;
using namespace std::chrono_literals;
using msgpack::Map;
using msgpack::Value;

namespace {

struct Rig : test::VirtualLoop {
    std::vector<Value> sent;
    std::vector<std::string> faults;
    RpcEngine rpc{clock, [this](const Value& v) { sent.push_back(v); }, Logger("rpc", null_sink())};
    Rig() { rpc.set_on_fault([this](const std::string& w) { faults.push_back(w); }); }

    /// Answer the last request after `delay` with `field` = `value`.
    void answer_later(Duration delay, const char* field, Value value)
    {
        const Value id = *sent.back().find("i");
        loop.post([this, delay, id, field, value] {
            timers.emplace_back(clock, clock.now() + delay,
                                [this, id, field, value] { rpc.dispatch(Value(Map{{"i", id}, {field, value}})); });
        });
    }
    std::vector<Timer> timers;
};

// A call that swallows `E` and counts it (parameters live in the frame, unlike lambda captures).
template <class E>
Task<void> call_expecting(RpcEngine& rpc, Value p, Duration timeout, int& count)
{
    try {
        co_await rpc.call(std::move(p), Value(Map{}), timeout);
    } catch (const E&) {
        ++count;
    }
}

} // namespace

TEST_CASE("a call sends {a, d, i} and returns the reply's d")
{
    Rig r;
    r.run(10s, [&]() -> Task<void> {
        auto call = r.rpc.call(path({"batt", "info"}), Value(Map{{"gen", 5}}), 2s);
        r.loop.post([&] { r.answer_later(100ms, "d", Value(Map{{"u", 53.5}})); });
        Value got = co_await call;
        CHECK(got.find("u")->number() == 53.5);
        CHECK(r.elapsed() == Approx(0.1).margin(0.02));
    });
    REQUIRE(r.sent.size() == 1);
    CHECK(*r.sent[0].find("a") == path({"batt", "info"}));
    CHECK(r.sent[0].find("i")->integer() == 1);
    CHECK(r.rpc.outstanding() == 0);
    CHECK(r.rpc.counters().replies == 1);
}

TEST_CASE("an e reply is a typed remote error and the link stays up")
{
    Rig r;
    r.run(10s, [&]() -> Task<void> {
        auto call = r.rpc.call(path({"ser", "errcount"}), Value(Map{}), 2s);
        r.loop.post([&] { r.answer_later(10ms, "e", Value("TypeError('x')")); });
        try {
            co_await call;
            FAIL("no error");
        } catch (const RemoteError& e) {
            CHECK(e.path() == "ser.errcount");
            CHECK(e.text() == "TypeError('x')");
        }
    });
    CHECK(r.faults.empty());
    CHECK_FALSE(r.rpc.closed());
}

TEST_CASE("a timeout fails the call at its deadline and reports a link fault")
{
    Rig r;
    r.run(10s, [&]() -> Task<void> {
        auto call = r.rpc.call(path({"batt", "rly"}), Value(Map{}), 2s);
        try {
            co_await call;
            FAIL("no timeout");
        } catch (const RpcTimeout&) {
            CHECK(r.elapsed() == Approx(2.0).margin(0.02));
        }
    });
    REQUIRE(r.faults.size() == 1);
    CHECK(r.faults[0].find("batt.rly") != std::string::npos);
    CHECK(r.rpc.counters().timeouts == 1);
    // The late reply is a duplicate now, not a crash.
    r.rpc.dispatch(Value(Map{{"i", 1}, {"d", nullptr}}));
    CHECK(r.rpc.counters().duplicate_replies == 1);
}

TEST_CASE("unknown and duplicate replies are counted and dropped")
{
    Rig r;
    r.run(10s, [&]() -> Task<void> {
        auto call = r.rpc.call(Value("ping"), Value("x"), 2s);
        r.loop.post([&] {
            r.rpc.dispatch(Value(Map{{"i", 99}, {"d", 1}}));  // unknown
            r.answer_later(10ms, "d", Value("R:x"));
            r.answer_later(20ms, "d", Value("R:x"));          // the same id again
        });
        Value got = co_await call;
        CHECK(*got.str() == "R:x");
        co_await sleep_for(50ms);
    });
    CHECK(r.rpc.counters().unknown_replies == 1);
    CHECK(r.rpc.counters().duplicate_replies == 1);
    CHECK(r.rpc.counters().replies == 1);
}

TEST_CASE("ids are unique among outstanding calls and stay below 2^31")
{
    Rig r;
    r.rpc.seed_ids(0x7FFFFFFE);
    int timeouts = 0;
    r.run(10s, [&]() -> Task<void> {
        auto body = [&](TaskGroup& g) -> Task<void> {
            for (int k = 0; k < 3; ++k) g.spawn(call_expecting<RpcTimeout>(r.rpc, path({"sys", "state"}), 1s, timeouts));
            co_return;
        };
        co_await with_group(body);
    });
    CHECK(timeouts == 3);
    REQUIRE(r.sent.size() == 3);
    CHECK(r.sent[0].find("i")->integer() == 0x7FFFFFFF);
    CHECK(r.sent[1].find("i")->integer() == 1);
    CHECK(r.sent[2].find("i")->integer() == 2);
}

TEST_CASE("the link end fails every pending call with link-down, and later calls at once")
{
    Rig r;
    int down = 0;
    r.run(10s, [&]() -> Task<void> {
        auto body = [&](TaskGroup& g) -> Task<void> {
            for (int k = 0; k < 2; ++k) g.spawn(call_expecting<LinkDown>(r.rpc, path({"batt", "info"}), 5s, down));
            co_await sleep_for(100ms);
            r.rpc.close("EOF");
            co_return;
        };
        co_await with_group(body);
        CHECK(r.elapsed() == Approx(0.1).margin(0.02));
        auto late = call_expecting<LinkDown>(r.rpc, Value("ping"), 1s, down);
        co_await late;
    });
    CHECK(down == 3);
    CHECK(r.faults.empty());
}

TEST_CASE("notifications reach the handler, the peer's requests are answered")
{
    Rig r;
    std::vector<std::string> seen;
    r.rpc.set_handler([&](const Value& p, const Value& d, bool is_request) -> Value {
        seen.push_back(path_name(p) + (is_request ? "?" : "!"));
        if (path_name(p) == "boom") throw std::runtime_error("no");
        return Value(d.integer().value_or(0) + 1);
    });
    r.rpc.dispatch(Value(Map{{"a", "link"}, {"d", true}}));
    r.rpc.dispatch(Value(Map{{"a", path({"x", "y"})}, {"d", 4}, {"i", 7}}));
    r.rpc.dispatch(Value(Map{{"a", "boom"}, {"i", 8}}));
    r.rpc.dispatch(Value(5));                       // not a map
    r.rpc.dispatch(Value(Map{{"d", 1}}));           // neither a nor i
    CHECK(seen == std::vector<std::string>{"link!", "x.y?", "boom?"});
    REQUIRE(r.sent.size() == 2);
    CHECK(r.sent[0] == Value(Map{{"i", 7}, {"d", 5}}));
    CHECK(*r.sent[1].find("e")->str() == "no");
    CHECK(r.rpc.counters().bad_messages == 2);
}
