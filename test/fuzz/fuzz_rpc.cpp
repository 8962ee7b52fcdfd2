// Fuzz target: the RPC envelope and the device client's sinks: any decoded
// message is dispatched (replies for unknown ids, notifications of every
// kind, requests from the peer) without a crash or an unbounded queue; and
// the simulator's request parser gets the same messages.
#include <cstdlib>

#include <moat/log.hpp>
#include <moat/loop.hpp>

#include "config_merge.hpp"
#include "device_client.hpp"
#include "msgpack.hpp"
#include "rpc.hpp"
#include "sim_controller.hpp"

using namespace moat;
using namespace moat::bms;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    static Loop loop;
    static VirtualClock clock(loop);
    std::size_t answers = 0;
    RpcEngine rpc(clock, [&](const msgpack::Value&) { ++answers; }, Logger("fuzz", null_sink()));
    ClientOptions o;
    o.pkt_queue = 4;
    DeviceClient client(rpc, o, Logger("fuzz", null_sink()));
    client.config = msgpack::Value(msgpack::Map{{"batt", msgpack::Map{{"poll", msgpack::Map{{"k", 1}}}}}});
    rpc.set_handler([&](const msgpack::Value& p, const msgpack::Value& d, bool r) { return client.on_message(p, d, r); });
    std::size_t emitted = 0;
    sim::ControllerOptions co;
    co.cells = co.modules = 2;
    sim::SimController device(clock, co, [&](msgpack::Value) { ++emitted; }, Logger("fuzz", null_sink()));
    device.start();
    std::span<const std::uint8_t> in(data, size);
    std::size_t requests = 0;
    while (!in.empty()) {
        auto r = msgpack::decode(in, msgpack::Limits{.max_bytes = 4096, .max_depth = 12, .max_elements = 512});
        if (r.status != msgpack::DecodeStatus::ok) break;
        if (r.value.find("a") && r.value.find("i")) ++requests;
        rpc.dispatch(r.value);
        device.receive(r.value);
        in = in.subspan(r.used);
    }
    if (client.packets().size() > 4) std::abort();
    if (answers > requests) std::abort();
    clock.advance(std::chrono::seconds(5));  // delayed ring replies, reboots, checks
    loop.run_ready();
    // The config delta merge on its own: the second object merged into the first.
    auto a = msgpack::decode(std::span(data, size));
    if (a.status == msgpack::DecodeStatus::ok) {
        auto b = msgpack::decode(std::span(data, size).subspan(a.used));
        if (b.status == msgpack::DecodeStatus::ok) merge_config(a.value, b.value);
    }
    return 0;
}
