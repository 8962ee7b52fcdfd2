#include "device_client.hpp"

#include "config_merge.hpp"

namespace moat::bms {

using msgpack::Array;
using msgpack::Map;
using msgpack::Value;

namespace {

double need_number(const Value* v, const char* what)
{
    if (!v || !v->number()) throw BadReply(std::string("reply: ") + what + " is not a number");
    return *v->number();
}
std::int64_t need_int(const Value* v, const char* what)
{
    if (!v || !v->integer()) throw BadReply(std::string("reply: ") + what + " is not an integer");
    return *v->integer();
}
// g++ 12 cannot keep an initializer_list alive across a co_await: the
// coroutines below build their arguments with these plain functions.
Value sys_path(const char* cmd) { return Value(Array{"sys", cmd}); }
Value empty() { return Value(Map{}); }
Value mode_arg(int mode)
{
    Value d = empty();
    d.set("mode", mode);
    return d;
}

std::optional<bool> forced_of(const Value* f)
{
    if (!f || f->is_nil()) return std::nullopt;
    if (auto b = f->boolean()) return *b;
    throw BadReply("reply: the forced relay state is neither nil nor a bool");
}

} // namespace

WorkSums WorkSums::from_info(const Value& w)
{
    if (!w.is_map()) throw BadReply("info: w is not a map");
    return {need_number(w.find("s"), "w.s"), need_int(w.find("n"), "w.n")};
}

WorkSums WorkSums::from_push(const Value& d)
{
    if (!d.is_map()) throw BadReply("work: not a map");
    return {need_number(d.find("w"), "w"), need_int(d.find("n"), "n")};
}

DeviceClient::DeviceClient(RpcEngine& rpc, ClientOptions opt, Logger log) : rpc_(rpc), opt_(std::move(opt)), log_(std::move(log)) {}

Value DeviceClient::app_path(const char* cmd) const { return Value(Array{opt_.app, cmd}); }
Value DeviceClient::ser_path(const char* cmd) const { return Value(Array{opt_.serial_app, cmd}); }

Task<Value> DeviceClient::fetch_config(int mode)
{
    Value p = sys_path("cfg"), d = mode_arg(mode);
    Value cfg = co_await rpc_.call(std::move(p), std::move(d), opt_.cfg_timeout);
    if (!cfg.is_map()) throw BadReply("sys.cfg: the configuration is not a map");
    if (mode == 0) config = cfg;
    co_return cfg;
}

Task<void> DeviceClient::update_config(Value delta, int mode)
{
    if (!delta.is_map()) throw std::invalid_argument("sys.cfg: a delta is a map");
    Value p = sys_path("cfg"), d = mode_arg(mode);
    d.set("cfg", delta);
    co_await rpc_.call(std::move(p), std::move(d), opt_.rpc_timeout);
    // Our copy follows at once; the device's mplex.cfg echo (if it comes) merges the same delta again.
    if (mode <= 1) merge_config(config, delta);
}

Task<void> DeviceClient::persist_config()
{
    Value p = sys_path("cfg"), d = mode_arg(1);
    co_await rpc_.call(std::move(p), std::move(d), opt_.rpc_timeout);
}

Task<void> DeviceClient::self_test()
{
    Value p = sys_path("test");
    Value r = co_await rpc_.call(std::move(p), empty(), opt_.rpc_timeout);
    const msgpack::Bytes want{0x61, 0x0D, 0x62, 0x0A, 0x63};
    if (!r.bin() || *r.bin() != want)
        throw LinkError("link self-test failed: sys.test returned " + r.dump(60) + ", not b'610D620A63'");
}

void DeviceClient::is_up() { rpc_.notify(sys_path("is_up"), empty()); }

Task<std::string> DeviceClient::ping(Value m)
{
    Value r = co_await rpc_.call(Value("ping"), std::move(m), opt_.rpc_timeout);
    if (!r.str()) throw BadReply("ping: not a string");
    co_return *r.str();
}

Task<Value> DeviceClient::state()
{
    Value p = sys_path("state");
    co_return co_await rpc_.call(std::move(p), empty(), opt_.rpc_timeout);
}

Task<void> DeviceClient::reboot(bool hard)
{
    Value p = sys_path(hard ? "reset" : "boot"), d = empty();
    d.set("code", hard ? "SysRsT" : "SysBooT");
    co_await rpc_.call(std::move(p), std::move(d), opt_.rpc_timeout);
}

Task<PackInfo> DeviceClient::info(std::int64_t gen, bool reset, Duration timeout)
{
    Value d = empty();
    d.set("gen", gen);
    if (reset) d.set("r", true);
    Value r = co_await rpc_.call(app_path("info"), std::move(d), timeout);
    if (!r.is_map()) throw BadReply("info: not a map");
    PackInfo p;
    p.u = need_number(r.find("u"), "u");
    p.i = need_number(r.find("i"), "i");
    const Value* w = r.find("w");
    if (!w) throw BadReply("info: no w");
    p.work = WorkSums::from_info(*w);
    const Value* rl = r.find("r");
    if (!rl || !rl->is_map()) throw BadReply("info: r is not a map");
    p.relay.on = need_int(rl->find("s"), "r.s") != 0;
    p.relay.forced = forced_of(rl->find("f"));
    const Value* l = rl->find("l");
    p.relay.live = l && l->boolean().value_or(false);
    p.gen = need_int(r.find("gen"), "gen");
    co_return p;
}

Task<RelayState> DeviceClient::relay()
{
    // No `st` key: a read (an `st: nil` would release the relay).
    Value r = co_await rpc_.call(app_path("rly"), empty(), opt_.rpc_timeout);
    const Array* a = r.array();
    if (!a || a->size() != 2) throw BadReply("rly: not [pin, forced]");
    RelayState s;
    s.on = need_int(&(*a)[0], "relay pin") != 0;
    s.forced = forced_of(&(*a)[1]);
    co_return s;
}

Task<void> DeviceClient::force_relay(std::optional<bool> on)
{
    if (on) log_.warning("forcing the relay {}: the controller's own pack checks no longer switch it", *on ? "on" : "off");
    Value d = empty();
    d.set("st", on ? Value(*on) : Value());
    co_await rpc_.call(app_path("rly"), std::move(d), opt_.rpc_timeout);
}

Task<void> DeviceClient::live() { co_await rpc_.call(app_path("live"), empty(), opt_.rpc_timeout); }

Task<void> DeviceClient::send_packet(std::vector<std::uint8_t> payload)
{
    Value d = empty();
    d.set("data", Value(std::move(payload)));
    co_await rpc_.call(ser_path("send"), std::move(d), opt_.rpc_timeout);
}

Task<std::optional<ErrCount>> DeviceClient::errcount()
{
    std::optional<Value> r;
    try {
        r = co_await rpc_.call(ser_path("errcount"), empty(), opt_.rpc_timeout);
    } catch (const RemoteError& e) {
        log_.debug("errcount: {}", e.what());  // the 2022 device cannot answer it
    }
    if (!r || !r->is_map()) co_return std::nullopt;
    co_return ErrCount{need_int(r->find("crc"), "crc"), need_int(r->find("frame"), "frame")};
}

Value DeviceClient::on_message(const Value& p, const Value& data, bool is_request)
{
    const std::string name = path_name(p);
    if (is_request) throw RemoteError(name, "the host serves no requests");
    if (name == "link") {
        if (auto b = data.boolean()) {
            if (on_link) on_link(*b);
        } else {
            log_.warning("link: not a bool: {}", data.dump(40));
        }
    } else if (name == opt_.serial_app + ".in_pkt") {
        if (!data.bin()) throw BadReply("in_pkt: not a binary");
        ++counters_.pkts;
        if (packets_.size() >= opt_.pkt_queue) {
            packets_.pop_front();
            ++counters_.pkts_dropped;
            log_.warning("cell packet queue full ({}): dropped the oldest ({} so far)", opt_.pkt_queue, counters_.pkts_dropped);
        }
        packets_.push_back(*data.bin());
        if (on_packet) on_packet();
    } else if (name == opt_.serial_app + ".in_raw") {
        ++counters_.raw_chunks;
        if (auto* b = data.bin()) log_.debug("ring console: {}", std::string(b->begin(), b->end()));
    } else if (name == opt_.app + ".work") {
        ++counters_.work_pushes;
        auto w = WorkSums::from_push(data);
        if (on_work) on_work(w);
    } else if (name == "mplex.cfg") {
        const Value* cfg = data.find("cfg");
        if (!cfg || !cfg->is_map()) throw BadReply("mplex.cfg: no cfg map");
        ++counters_.cfg_deltas;
        merge_config(config, *cfg);
        if (on_config) on_config(*cfg);
    } else {
        log_.debug("ignored notification {}", name);
    }
    return Value();
}

} // namespace moat::bms
