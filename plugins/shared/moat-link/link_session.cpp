#include "link_session.hpp"

#include <algorithm>

#include "config_merge.hpp"
#include "port.hpp"

namespace moat::bms {

using namespace std::chrono;
using msgpack::Value;

namespace {

/// Why a session ended (EOF, link false, decode errors, a timeout).
class SessionEnded : public LinkError {
public:
    using LinkError::LinkError;
};


double number_at(const Value& cfg, const std::string& path, std::optional<double> fallback)
{
    const Value* v = config_at(cfg, path);
    if (v && v->number()) return *v->number();
    if (fallback) return *fallback;
    throw DeviceConfigError("device configuration: '" + path + "' is missing");
}

} // namespace

Link::Link(Loop& loop, SessionOptions opt, Logger log) : loop_(loop), opt_(std::move(opt)), log_(std::move(log))
{
    opener = [this](Loop& l) -> std::unique_ptr<ByteStream> {
        if (!opt_.device.empty()) return std::make_unique<ByteStream>(l, open_tty(opt_.device), opt_.device);
        return std::make_unique<ByteStream>(l, connect_unix(opt_.socket), opt_.socket);
    };
}

void Link::publish()
{
    if (on_state) on_state(state_);
}

void Link::console(const std::string& line, bool truncated)
{
    ++state_.console_lines;
    // At most 20 console lines per 10 s reach the log; the rest are counted.
    const auto now = loop_.clock().now();
    if (now - console_window_ > seconds(10)) {
        if (console_suppressed_) log_.info("C: ({} more console lines not shown)", console_suppressed_);
        console_window_ = now;
        console_in_window_ = 0;
        console_suppressed_ = 0;
    }
    if (++console_in_window_ > 20) {
        ++console_suppressed_;
        return;
    }
    log_.info("C: {}{}", line, truncated ? " [cut]" : "");
}

Task<void> Link::reader(ByteStream& stream, FrameStream& frames, RpcEngine& rpc)
{
    std::vector<std::uint8_t> buf(4096);
    for (;;) {
        std::size_t n = 0;
        try {
            n = co_await stream.read(buf);
        } catch (const IoError& e) {
            throw SessionEnded(e.what());
        }
        if (n == 0) throw SessionEnded(stream.name() + ": end of file");
        for (auto& ev : frames.feed(std::span(buf).first(n))) {
            if (auto* m = std::get_if<StreamMessage>(&ev)) {
                rpc.dispatch(m->value);
            } else if (auto* l = std::get_if<ConsoleLine>(&ev)) {
                console(l->text, l->truncated);
            } else {
                ++state_.decode_errors;
                const auto now = loop_.clock().now();
                decode_errors_.push_back(now);
                while (!decode_errors_.empty() && now - decode_errors_.front() > opt_.resync_window) decode_errors_.pop_front();
                log_.warning("{} (resync on the next message)", std::get<StreamError>(ev).what);
                publish();  // the counter is watched (decode errors are rare; console lines are not published each)
                if (int(decode_errors_.size()) >= opt_.resync_errors)
                    throw SessionEnded(fmt::format("{} decode errors within {:.3g} s", decode_errors_.size(),
                                                   duration<double>(opt_.resync_window).count()));
            }
        }
    }
}

Task<void> Link::run_once(OnUp on_up)
{
    decode_errors_.clear();
    std::unique_ptr<ByteStream> stream = opener(loop_);
    auto& clock = loop_.clock();

    if (opt_.guarded) {
        // Old output of the device (and the tail of an earlier session): drop
        // it until the line is quiet, within a bound.
        const auto until = clock.now() + opt_.drain_max;
        std::vector<std::uint8_t> junk(4096);
        for (bool quiet = false; !quiet && clock.now() < until;) {
            std::size_t n = 1;
            try {
                auto r = with_timeout(opt_.drain_silence, stream->read(junk));
                n = co_await r;
            } catch (const TimeoutError&) {
                quiet = true;
            }
            if (!quiet && n == 0) throw SessionEnded(stream->name() + ": end of file while draining");
        }
    }

    FrameStream frames(opt_.guarded);
    ByteStream& out = *stream;
    const bool guarded = opt_.guarded;
    RpcEngine rpc(clock, [&out, guarded](const Value& v) { out.write(FrameStream::frame(v, guarded)); }, log_.child("rpc"));
    DeviceClient client(rpc, opt_.client, log_);
    rpc.set_handler([&client](const Value& p, const Value& d, bool req) { return client.on_message(p, d, req); });

    std::optional<std::string> end_reason;
    Event ended;
    auto end = [&](const std::string& why) {
        if (!end_reason) end_reason = why;
        ended.set();
    };
    rpc.set_on_fault(end);
    client.on_link = [&](bool up) {
        if (!up) end("the device sent link false");
    };
    Event pkt_ready;
    client.on_packet = [&] { pkt_ready.set(); };
    std::unique_ptr<cell::PacketEngine> engine;

    auto packets = [&]() -> Task<void> {
        for (;;) {
            co_await pkt_ready.wait();
            pkt_ready.clear();
            while (!client.packets().empty()) {
                auto p = std::move(client.packets().front());
                client.packets().pop_front();
                if (engine) engine->on_packet(p);
            }
        }
    };
    auto keepalive = [&](Duration every) -> Task<void> {
        for (;;) {
            co_await sleep_for(every);
            co_await client.live();
        }
    };
    auto main = [&](TaskGroup& g) -> Task<void> {
        co_await client.fetch_config(0);
        const std::string app = opt_.client.app;
        const double k = number_at(client.config, app + ".poll.k", std::nullopt);
        const double t = number_at(client.config, app + ".poll.t", 250.0);
        const double pn = number_at(client.config, app + ".poll.n", 5.0);
        const double baud = number_at(client.config, opt_.client.serial_app + ".baud", 2400.0);
        const double cells = number_at(client.config, app + ".batt.n", 0.0);
        if (cells > cell::max_cells) throw DeviceConfigError(fmt::format("device configuration: '{}.batt.n' is {} (at most 32)", app, cells));
        co_await client.self_test();
        client.is_up();

        cell::PacketEngineOptions eo;
        eo.baud = unsigned(std::max(1.0, baud));
        eo.ring_cells = int(cells);
        eo.attempts = opt_.ring_attempts;
        engine = std::make_unique<cell::PacketEngine>(clock, [&client](std::vector<std::uint8_t> p) { return client.send_packet(std::move(p)); },
                                                      eo, log_.child("ring"));
        const auto every = duration_cast<Duration>(duration<double, std::milli>(k / 2.1));
        const auto info_timeout = std::max<Duration>(seconds(2), duration_cast<Duration>(duration<double, std::milli>(t * (2 * pn + 4))));
        g.spawn(keepalive(every), "moat-bms keepalive");

        state_.up = true;
        state_.reason = "up";
        up_since_ = clock.now();
        ++state_.sessions;
        publish();
        log_.info("link up on {} ({} cells, keepalive every {:.3g} s)", out.name(), cells, duration<double>(every).count());
        LinkSession session{client, *engine, client.config, every, info_timeout, app};
        co_await on_up(session);
        end("done");
    };
    auto body = [&](TaskGroup& g) -> Task<void> {
        g.spawn(reader(out, frames, rpc), "moat-bms reader");
        g.spawn(packets(), "moat-bms packets");
        g.spawn(main(g), "moat-bms session");
        co_await ended.wait();
        g.cancel();
    };
    std::exception_ptr failure;
    try {
        co_await with_group(body);
    } catch (...) {
        failure = std::current_exception();
    }
    const std::string why = end_reason.value_or("session ended");
    rpc.close(why);
    if (engine) engine->fail_all(cell::CellErrorKind::timeout, "link down: " + why);
    if (failure) std::rethrow_exception(failure);
    if (why != "done") throw SessionEnded(why);
}

Task<void> Link::run(OnUp on_up)
{
    auto& clock = loop_.clock();
    Duration backoff = opt_.backoff_initial;
    for (;;) {
        const auto sessions_before = state_.sessions;
        std::string reason;
        bool config_error = false;
        try {
            co_await run_once(on_up);
            reason = "session ended";
        } catch (const Cancelled&) {
            throw;
        } catch (const DeviceConfigError& e) {
            reason = e.what();
            config_error = true;
        } catch (const std::exception& e) {
            reason = e.what();
        }
        // A session that was up for backoff_reset starts the back-off over.
        if (state_.sessions != sessions_before && clock.now() - up_since_ >= opt_.backoff_reset) backoff = opt_.backoff_initial;
        const Duration wait = config_error ? opt_.config_retry : backoff;
        state_.up = false;
        state_.reason = reason;
        ++state_.failures;
        state_.next_retry = wait;
        publish();
        if (config_error) log_.error("{}; retrying in {:.3g} s", reason, duration<double>(wait).count());
        else log_.warning("link down: {}; reconnecting in {:.3g} s", reason, duration<double>(wait).count());
        co_await sleep_for(wait);
        if (!config_error)
            backoff = std::min(opt_.backoff_max, duration_cast<Duration>(duration<double>(backoff) * opt_.backoff_factor));
    }
}

} // namespace moat::bms
