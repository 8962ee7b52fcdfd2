// The device client against a scripted controller (virtual time): typed
// calls and their wire form, wrong-typed replies, the 2022 errcount, the
// sinks (bounded packet queue, config deltas, energy pushes); config merge.
#include "config_merge.hpp"
#include "device_client.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace moat;
using namespace moat::bms;
using namespace std::chrono_literals;
using msgpack::Array;
using msgpack::Map;
using msgpack::Value;

namespace {

struct ClientRig : test::VirtualLoop {
    explicit ClientRig(ClientOptions o = {}) : client(rpc, o, Logger("client", null_sink()))
    {
        rpc.set_handler([this](const Value& p, const Value& d, bool r) { return client.on_message(p, d, r); });
    }
    std::vector<Value> sent;
    std::function<std::optional<Value>(const Value& req)> answer;  ///< the reply message for a request (nullopt: none)
    RpcEngine rpc{clock, [this](const Value& v) {
                      sent.push_back(v);
                      if (!answer) return;
                      if (auto r = answer(v)) loop.post([this, m = *r] { rpc.dispatch(m); });
                  },
                  Logger("rpc", null_sink())};
    DeviceClient client;
};

Value reply_d(const Value& req, Value d) { return Value(Map{{"i", *req.find("i")}, {"d", std::move(d)}}); }

} // namespace

TEST_CASE("info decodes float32 values, the relay and the energy sums")
{
    ClientRig r;
    r.answer = [](const Value& req) -> std::optional<Value> {
        const auto raw = msgpack::encode(Value(Map{{"u", 53.5}, {"i", -1.25}, {"w", Map{{"s", 100.0}, {"n", 7}}},
                                                   {"r", Map{{"s", 1}, {"f", false}, {"l", true}}}, {"gen", 6}}),
                                         {.float32 = true});
        return reply_d(req, msgpack::decode(raw).value);
    };
    std::optional<PackInfo> p;
    r.run(10s, [&]() -> Task<void> {
        auto t = r.client.info(5, true, 3s);
        p = co_await t;
    });
    REQUIRE(p);
    CHECK(p->u == 53.5);
    CHECK(p->i == -1.25);
    CHECK(p->work.sum == 100.0);
    CHECK(p->work.ticks == 7);
    CHECK(p->relay.on);
    CHECK(p->relay.forced == false);
    CHECK(p->relay.live);
    CHECK(p->gen == 6);
    CHECK(*r.sent.at(0).find("d") == Value(Map{{"gen", 5}, {"r", true}}));
}

TEST_CASE("a reply of the wrong type fails only its call")
{
    ClientRig r;
    r.answer = [](const Value& req) -> std::optional<Value> {
        if (path_name(*req.find("a")) == "batt.info") return reply_d(req, Value(Map{{"u", "high"}}));
        return reply_d(req, Value("R:1"));
    };
    bool bad = false;
    std::string pong;
    r.run(10s, [&]() -> Task<void> {
        try {
            auto t = r.client.info(-1, false, 3s);
            co_await t;
        } catch (const BadReply&) {
            bad = true;
        }
        auto p = r.client.ping(Value(1));
        pong = co_await p;
    });
    CHECK(bad);
    CHECK(pong == "R:1");
    CHECK_FALSE(r.rpc.closed());
}

TEST_CASE("relay: a read sends no st key, a release sends st nil, a force sends the bool")
{
    ClientRig r;
    r.answer = [](const Value& req) -> std::optional<Value> {
        if (req.find("d")->find("st")) return reply_d(req, Value());
        return reply_d(req, Value(Array{1, nullptr}));
    };
    std::optional<RelayState> s;
    r.run(10s, [&]() -> Task<void> {
        auto a = r.client.relay();
        s = co_await a;
        auto b = r.client.force_relay(std::nullopt);
        co_await b;
        auto c = r.client.force_relay(false);
        co_await c;
    });
    REQUIRE(s);
    CHECK(s->on);
    CHECK_FALSE(s->forced);
    REQUIRE(r.sent.size() == 3);
    CHECK(*r.sent[0].find("d") == Value(Map{}));
    CHECK(r.sent[1].find("d")->find("st")->is_nil());
    CHECK(*r.sent[2].find("d")->find("st") == Value(false));
}

TEST_CASE("errcount: counters, or unknown for the 2022 proxy reply and an error reply")
{
    for (int variant = 0; variant < 3; ++variant) {
        ClientRig r;
        r.answer = [variant](const Value& req) -> std::optional<Value> {
            if (variant == 0) return reply_d(req, Value(Map{{"crc", 2}, {"frame", 1}}));
            if (variant == 1) return reply_d(req, Value(msgpack::Ext{4, {'x'}}));
            return Value(Map{{"i", *req.find("i")}, {"e", "TypeError('coroutine')"}});
        };
        std::optional<ErrCount> e;
        r.run(10s, [&]() -> Task<void> {
            auto t = r.client.errcount();
            e = co_await t;
        });
        if (variant == 0) {
            REQUIRE(e);
            CHECK(e->crc == 2);
            CHECK(e->frame == 1);
        } else {
            CHECK_FALSE(e);
        }
    }
}

TEST_CASE("configuration calls: fetch by mode, a delta merges into the copy, persist is mode 1 without cfg")
{
    ClientRig r;
    r.answer = [](const Value& req) -> std::optional<Value> {
        const Value& d = *req.find("d");
        if (d.find("cfg")) return reply_d(req, Value());
        if (d.find("mode")->integer() == 1) return reply_d(req, Value());
        return reply_d(req, Value(Map{{"batt", Map{{"poll", Map{{"k", 15000}}}}}}));
    };
    r.run(10s, [&]() -> Task<void> {
        auto f = r.client.fetch_config(0);
        co_await f;
        auto u = r.client.update_config(Value(Map{{"batt", Map{{"poll", Map{{"k", "-"}}}}}}), 0);
        co_await u;
        auto p = r.client.persist_config();
        co_await p;
    });
    REQUIRE(r.sent.size() == 3);
    CHECK(*r.sent[0].find("d") == Value(Map{{"mode", 0}}));
    CHECK(r.sent[1].find("d")->find("cfg"));
    CHECK(*r.sent[2].find("d") == Value(Map{{"mode", 1}}));
    CHECK(config_at(r.client.config, "batt.poll.k") == nullptr);
    CHECK(config_at(r.client.config, "batt.poll"));
}

TEST_CASE("the self-test refuses anything but a\\rb\\nc")
{
    ClientRig r;
    r.answer = [](const Value& req) -> std::optional<Value> { return reply_d(req, Value(msgpack::Bytes{0x61, 0x0A, 0x62, 0x0A, 0x63})); };
    bool failed = false;
    r.run(10s, [&]() -> Task<void> {
        try {
            auto t = r.client.self_test();
            co_await t;
        } catch (const LinkError&) {
            failed = true;
        }
    });
    CHECK(failed);
}

TEST_CASE("sinks: the packet queue drops the oldest, deltas merge, energy pushes arrive")
{
    ClientOptions o;
    o.pkt_queue = 3;
    ClientRig r(o);
    r.client.config = Value(Map{{"batt", Map{{"poll", Map{{"k", 15000}, {"t", 250}}}}}});
    std::vector<WorkSums> work;
    r.client.on_work = [&](const WorkSums& w) { work.push_back(w); };
    for (int k = 0; k < 5; ++k) r.rpc.dispatch(Value(Map{{"a", Array{"ser", "in_pkt"}}, {"d", msgpack::Bytes{std::uint8_t(k)}}}));
    REQUIRE(r.client.packets().size() == 3);
    CHECK(r.client.packets().front() == msgpack::Bytes{2});
    CHECK(r.client.counters().pkts_dropped == 2);
    std::vector<Value> deltas;
    r.client.on_config = [&](const Value& d) {
        CHECK(config_at(r.client.config, "batt.poll.k")->integer() == 10000);  // merged before the call
        deltas.push_back(d);
    };
    r.rpc.dispatch(Value(Map{{"a", Array{"mplex", "cfg"}}, {"d", Map{{"cfg", Map{{"batt", Map{{"poll", Map{{"k", 10000}, {"t", "-"}}}}}}}}}}));
    CHECK(config_at(r.client.config, "batt.poll.k")->integer() == 10000);
    CHECK(config_at(r.client.config, "batt.poll.t") == nullptr);
    REQUIRE(deltas.size() == 1);
    CHECK(deltas[0] == Value(Map{{"batt", Map{{"poll", Map{{"k", 10000}, {"t", "-"}}}}}}));
    r.rpc.dispatch(Value(Map{{"a", Array{"batt", "work"}}, {"d", Map{{"w", 1234.5}, {"n", 1000}}}}));
    REQUIRE(work.size() == 1);
    CHECK(work[0].sum == 1234.5);
    CHECK(work[0].ticks == 1000);
    // Both forms of the energy sums decode to the same struct.
    auto a = WorkSums::from_info(Value(Map{{"s", 1.5}, {"n", 2}}));
    auto b = WorkSums::from_push(Value(Map{{"w", 1.5}, {"n", 2}}));
    CHECK(a.sum == b.sum);
    CHECK(a.ticks == b.ticks);
    CHECK_THROWS_AS(WorkSums::from_push(Value(Map{{"w", "x"}, {"n", 2}})), BadReply);
}

TEST_CASE("config merge: nested maps merge, '-' deletes, port replaces, a non-map replaces")
{
    Value tree(Map{{"port", Map{{"dev", "/dev/ttyACM0"}, {"guarded", true}}}, {"batt", Map{{"u", Map{{"max", 58}, {"min", 41.6}}}}}});
    merge_config(tree, Value(Map{{"port", Map{{"socket", "/run/x"}}}, {"batt", Map{{"u", Map{{"max", 57}, {"min", "-"}}}, {"new", 1}}}}));
    CHECK(*tree.find("port") == Value(Map{{"socket", "/run/x"}}));
    CHECK(config_at(tree, "batt.u.max")->integer() == 57);
    CHECK(config_at(tree, "batt.u.min") == nullptr);
    CHECK(config_at(tree, "batt.new")->integer() == 1);
    merge_config(tree, Value(Map{{"batt", 5}}));
    CHECK(config_at(tree, "batt")->integer() == 5);
    CHECK(config_at(tree, "batt.u") == nullptr);
}

TEST_CASE("config delta: one dotted key as nested maps")
{
    CHECK(config_delta("batt.poll.k", Value(10000)) == Value(Map{{"batt", Map{{"poll", Map{{"k", 10000}}}}}}));
    CHECK(config_delta("batt", Value(1.5)) == Value(Map{{"batt", 1.5}}));
}
