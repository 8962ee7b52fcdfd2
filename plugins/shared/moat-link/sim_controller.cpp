#include "sim_controller.hpp"

#include <cmath>
#include <fmt/format.h>

#include "config_merge.hpp"
#include "rpc.hpp"

namespace moat::bms::sim {

using namespace std::chrono;
using msgpack::Array;
using msgpack::Map;
using msgpack::Value;

Value default_device_config(int cells)
{
    return Value(Map{
        {"apps", Map{{"ser", "moat.app.serial.SerialCmd"}, {"batt", "moat.app.bms.BMSCmd"}}},
        {"port", Map{{"guarded", true}}},
        {"ser", Map{{"uart", 0}, {"tx", 0}, {"rx", 1}, {"baud", 2400}, {"max", Map{{"len", 2000}, {"idle", 500}}}, {"start", 255}}},
        {"batt",
         Map{{"serial", "ser"},
             {"t", Map{{"voltage", 1}, {"cellvoltage", 2}, {"celltemperature", 5}}},
             {"batt", Map{{"n", cells},
                          {"cap", Map{{"ah", 280}, {"cur", 50000000}, {"loss", 0.02}}},
                          {"u", Map{{"max", 58.0}, {"min", 41.6}, {"pin", 26}, {"scale", 0.0013}, {"offset", 0}}},
                          {"i", Map{{"max", 200}, {"min", -200}, {"ext", Map{{"max", 150}, {"min", -150}}}, {"pin", 27}, {"ref", 28},
                                    {"scale", -0.000125}, {"offset", 0.1}}}}},
             {"cell", Map{{"balance", Map{{"min", 3.45}, {"d", 0.05}, {"n", 4}, {"r", 0.05}}},
                          {"u", Map{{"min", 2.7}, {"max", 3.63}, {"nom", 3.2}, {"ext", Map{{"min", 2.9}, {"max", 3.58}}},
                                    {"lim", Map{{"min", 3.0}, {"max", 3.4}}}, {"scale", 0.001}, {"offset", 0}, {"samples", 5},
                                    {"range", 0.5}, {"corr", 0.985}}},
                          {"load", Map{{"r", 3.1}, {"b", 3950}, {"max", 60}}},
                          {"batt", Map{{"b", 3950}, {"min", 15}, {"max", 45}}}}},
             {"poll", Map{{"n", 5}, {"t", 250}, {"d", 2000}, {"k", 15000}}},
             {"relay", Map{{"pin", 2}, {"t", 10000}, {"t1", 2000}}}}},
    });
}

namespace {
double num_at(const Value& cfg, std::string_view path, double fallback)
{
    const Value* v = config_at(cfg, path);
    return v && v->number() ? *v->number() : fallback;
}
} // namespace

SimController::SimController(Clock& clock, ControllerOptions opt, Emit emit, Logger log)
    : clock_(clock), opt_(std::move(opt)), emit_(std::move(emit)), log_(std::move(log)), ring_(opt_.modules, opt_.seed)
{
    ring_.byte_ring = opt_.byte_ring;
    running_ = opt_.device_config.is_nil() ? default_device_config(opt_.cells) : opt_.device_config;
    stored_ = running_;
    fallback_ = running_;
}

SimController::~SimController() = default;

Duration SimController::scaled(Duration d) const
{
    return opt_.time_factor > 0 ? duration_cast<Duration>(d / opt_.time_factor) : d;
}

void SimController::later(Duration d, std::function<void()> fn)
{
    timers_.remove_if([](const OneShot& o) { return o.fired; });
    auto& slot = timers_.emplace_back();
    // Marked fired only after fn returned: a later() from inside fn must not prune it.
    slot.timer = Timer(clock_, clock_.now() + d, [&slot, fn = std::move(fn)] {
        fn();
        slot.fired = true;
    });
}

void SimController::start()
{
    up_ = true;
    // A soft reboot with the relay on keeps it on: live starts as the relay.
    live_ = relay_;
    switch_ok_ = false;
    t_sw_ = clock_.now() + scaled(milliseconds(std::int64_t(num_at(running_, "batt.relay.t1", 2000))));
    check_timer_ = Timer(clock_, clock_.now() + scaled(milliseconds(std::int64_t(num_at(running_, "batt.poll.t", 250)))), [this] { check(); });
    keepalive_timer();
    notify_str("link", Value(true));
}

void SimController::keepalive_timer()
{
    const auto k = milliseconds(std::int64_t(num_at(running_, "batt.poll.k", 0)));
    if (k.count() <= 0) {
        keepalive_.reset();
        return;
    }
    keepalive_ = Timer(clock_, clock_.now() + scaled(k), [this] {
        if (opt_.quirks_2022) return;  // the 2022 handler never runs
        live_ = false;
        if (relay_ && forced_ < 0) set_relay(false, "keepalive lost");
    });
}

void SimController::notify(const char* a0, const char* a1, Value d)
{
    emit_(Value(Map{{"a", path({a0, a1})}, {"d", std::move(d)}}));
}

void SimController::notify_str(const char* a, Value d) { emit_(Value(Map{{"a", a}, {"d", std::move(d)}})); }

void SimController::receive(const Value& msg)
{
    if (!up_ || faults.silent) return;
    const Value* a = msg.find("a");
    const Value* i = msg.find("i");
    if (!a) return;  // the host never answers us
    const std::string p = path_name(*a);
    requests_.push_back(p);
    log_.debug("request {} {}", requests_.size(), p);  // numbered: the logger folds repeated lines
    const Value* d = msg.find("d");
    const Value data = d ? *d : Value();
    Value id = i ? *i : Value();
    handle(p, data, [this, id, has_id = i != nullptr](Value result, std::string error) {
        if (!has_id || !up_) return;
        if (!error.empty()) emit_(Value(Map{{"i", id}, {"e", std::move(error)}}));
        else emit_(Value(Map{{"i", id}, {"d", std::move(result)}}));
    });
}

void SimController::handle(const std::string& p, const Value& data, Done done)
{
    if (p == "sys.cfg") return handle_cfg(data, done);
    if (p == "sys.is_up") {
        notify_str("link", Value(true));
        return done(Value(), {});
    }
    if (p == "sys.test") return done(Value(msgpack::Bytes{0x61, 0x0D, 0x62, 0x0A, 0x63}), {});
    if (p == "ping") {
        std::string m = data.str() ? *data.str() : data.dump(100);
        return done(Value("R:" + m), {});
    }
    if (p == "sys.state") return done(Value(Map{{"n", "std"}, {"c", "std"}, {"fb", false}}), {});
    if (p == "sys.boot" || p == "sys.reset" || p == "sys.stop") {
        static const std::map<std::string, std::string> codes{{"sys.boot", "SysBooT"}, {"sys.reset", "SysRsT"}, {"sys.stop", "SysStoP"}};
        const Value* code = data.find("code");
        if (!code || !code->str() || *code->str() != codes.at(p)) return done(Value(), "RuntimeError('wrong code')");
        done(Value(true), {});
        if (p != "sys.stop") reboot(p == "sys.reset");
        return;
    }
    if (p == "batt.info") return handle_info(data, std::move(done));
    if (p == "batt.rly") return handle_rly(data, done);
    if (p == "batt.live") {
        live_ = true;
        keepalive_timer();
        return done(Value(), {});
    }
    if (p == "ser.send") {
        const Value* payload = data.find("data");
        if (!payload || !payload->bin()) return done(Value(), "TypeError('data')");
        // The ring is serial: a request waits for the one before it.
        const auto bytes = *payload->bin();
        const unsigned baud = unsigned(num_at(running_, "ser.baud", 2400));
        const auto wire = double(bytes.size() + 4 + ring_.modules().size());
        const auto start = std::max(clock_.now(), ring_free_);
        ring_free_ = start + scaled(duration_cast<Duration>(duration<double>(10.0 * wire / baud)));
        const auto at = ring_free_ - clock_.now();
        later(at, [this, bytes] {
            std::vector<std::uint16_t> levels;
            for (const auto& m : ring_.modules()) levels.push_back(m.level_raw);
            for (auto& reply : ring_.process(bytes))
                if (up_) notify("ser", "in_pkt", Value(reply));
            // A module's balance level is an observable of the ring (tests, the sim's log).
            for (std::size_t i = 0; i < levels.size() && i < ring_.modules().size(); ++i)
                if (ring_.modules()[i].level_raw != levels[i])
                    log_.info("module {}: balance level raw {} -> {}", i, levels[i], ring_.modules()[i].level_raw);
        });
        return done(Value(), {});
    }
    if (p == "ser.errcount") {
        if (opt_.quirks_2022) return done(Value(msgpack::Ext{4, {'c', 'o', 'r', 'o'}}), {});
        auto [crc, frame] = ring_.take_errcount();
        return done(Value(Map{{"crc", crc}, {"frame", frame}}), {});
    }
    done(Value(), fmt::format("AttributeError(\"no command '{}'\")", p));
}

void SimController::handle_cfg(const Value& data, Done& done)
{
    const std::int64_t mode = data.find("mode") && data.find("mode")->integer() ? *data.find("mode")->integer() : 0;
    const Value* cfg = data.find("cfg");
    const bool have = cfg && !cfg->is_nil();
    if (mode < 0 || mode > 3 || (have && !cfg->is_map())) return done(Value(), "ValueError('mode or cfg')");
    Value* tree = mode == 2 ? &stored_ : mode == 3 ? &fallback_ : &running_;
    if (!have) {
        if (mode == 1) stored_ = running_;
        return done(mode == 1 ? Value() : *tree, {});
    }
    merge_config(*tree, *cfg);
    if (mode == 1) merge_config(stored_, *cfg);
    done(Value(), {});
    if (mode <= 1) {
        apply_config();
        // The energy sums go out before the delta is confirmed (their scale may change).
        if (n_ > 0 && !faults.lose_next_work_push) notify("batt", "work", Value(Map{{"w", w_}, {"n", n_}}));
        faults.lose_next_work_push = false;
        w_ = 0;
        n_ = 0;
        if (faults.omit_mplex_cfg) return;
        Value delta = *cfg;
        auto send = [this, delta] { notify("mplex", "cfg", Value(Map{{"cfg", delta}})); };
        if (faults.mplex_cfg_delay.count() > 0) later(faults.mplex_cfg_delay, send);
        else send();
    }
}

void SimController::change_config(const Value& delta)
{
    Done ignore = [](Value, std::string) {};
    handle_cfg(Value(Map{{"mode", 0}, {"cfg", delta}}), ignore);
}

void SimController::apply_config()
{
    keepalive_timer();
}

Value SimController::info_value(bool reset)
{
    double u = 0;
    for (auto& m : ring_.modules()) u += m.voltage;
    u *= u_gain;
    const double i = relay_ ? pack_current : 0.0;
    Value forced = forced_ < 0 ? Value() : Value(forced_ == 1);
    Value v(Map{{"u", u}, {"i", i}, {"w", Map{{"s", w_}, {"n", n_}}}, {"r", Map{{"s", relay_ ? 1 : 0}, {"f", forced}, {"l", live_}}}, {"gen", gen_}});
    if (reset) {
        w_ = 0;
        n_ = 0;
    }
    return v;
}

void SimController::handle_info(const Value& data, Done done)
{
    const std::int64_t gen = data.find("gen") && data.find("gen")->integer() ? *data.find("gen")->integer() : -1;
    const bool reset = data.find("r") && data.find("r")->boolean().value_or(false);
    if (gen != gen_) return done(info_value(reset), {});
    info_waits_.push_back(InfoWait{gen, reset, std::move(done)});
}

void SimController::wake_info()
{
    auto waits = std::move(info_waits_);
    info_waits_.clear();
    for (auto& w : waits) {
        if (w.gen == gen_) info_waits_.push_back(std::move(w));
        else w.done(info_value(w.reset), {});
    }
}

void SimController::handle_rly(const Value& data, Done& done)
{
    ++rly_calls_;
    const Value* st = data.find("st");
    if (!st) {
        Value forced = forced_ < 0 ? Value() : Value(forced_ == 1);
        return done(Value(Array{relay_ ? 1 : 0, forced}), {});
    }
    if (st->is_nil()) {
        forced_ = -1;
        if (!relay_) t_sw_ = clock_.now() + scaled(milliseconds(std::int64_t(num_at(running_, "batt.relay.t", 10000))));
        switch_ok_ = false;
    } else if (auto b = st->boolean()) {
        forced_ = *b ? 1 : 0;
        set_relay(*b, *b ? "forced on" : "forced off");
    } else {
        return done(Value(), "TypeError('st')");
    }
    done(Value(), {});
}

void SimController::set_relay(bool on, const std::string& why)
{
    if (relay_ == on) return;
    relay_ = on;
    relay_history_.push_back({clock_.now(), on, why});
    log_.info("relay {} ({})", on ? "on" : "off", why);
    next_generation();
}

void SimController::next_generation()
{
    gen_ = gen_ >= 99 ? 10 : gen_ + 1;
    wake_info();
}

void SimController::check()
{
    const auto period = scaled(milliseconds(std::int64_t(num_at(running_, "batt.poll.t", 250))));
    check_timer_ = Timer(clock_, clock_.now() + period, [this] { check(); });
    ring_.tick(duration<double>(period).count() * opt_.time_factor);
    double u = 0;
    for (auto& m : ring_.modules()) u += m.voltage;
    u *= u_gain;
    const double i = relay_ ? pack_current : 0.0;
    w_ += u * i;
    ++n_;
    const bool ok = u >= num_at(running_, "batt.batt.u.min", 0) && u <= num_at(running_, "batt.batt.u.max", 1e9) &&
                    i >= num_at(running_, "batt.batt.i.min", -1e9) && i <= num_at(running_, "batt.batt.i.max", 1e9);
    if (clock_.now() > t_sw_) switch_ok_ = true;
    if (forced_ < 0 && live_) {
        if (ok && switch_ok_ && !relay_) set_relay(true, "check ok");
        else if (!ok && relay_) {
            set_relay(false, "pack limits");
            t_sw_ = clock_.now() + scaled(milliseconds(std::int64_t(num_at(running_, "batt.relay.t", 10000))));
            switch_ok_ = false;
        }
    }
    ++checks_;
    const int every = opt_.quirks_2022 ? 1 : std::max(1, int(num_at(running_, "batt.poll.n", 5)));
    if (checks_ % every == 0) next_generation();
    if (n_ >= 1000) {
        if (!faults.lose_next_work_push) notify("batt", "work", Value(Map{{"w", w_}, {"n", n_}}));
        faults.lose_next_work_push = false;
        w_ = 0;
        n_ = 0;
    }
}

void SimController::flood_in_pkt(int n)
{
    for (int k = 0; k < n; ++k) notify("ser", "in_pkt", Value(msgpack::Bytes{0x00, 0x11, 0x01, std::uint8_t(k & 7)}));
}

void SimController::reboot(bool hard)
{
    later(scaled(milliseconds(100)), [this, hard] {
        notify_str("link", Value(false));
        up_ = false;
        check_timer_.reset();
        keepalive_.reset();
        info_waits_.clear();  // pending calls die with the runtime: never answered
        running_ = stored_;
        w_ = 0;
        n_ = 0;
        if (hard) {
            if (relay_) set_relay(false, "hard reset");
            forced_ = -1;
        }
        boot_timer_ = Timer(clock_, clock_.now() + scaled(opt_.boot_outage), [this] { start(); });
    });
}

} // namespace moat::bms::sim
