// The moat-bms plugin: the link to a MoaT BMS controller (RP2040) and its
// cell ring, kept up with reconnects. At every link-up it reads the ring once
// and logs it; while up it long-polls the pack values. The battery logic and
// the D-Bus service build on this (a later issue).
#include <moat/command.hpp>
#include <moat/plugin.hpp>

#include "link_session.hpp"
#include "link_state_service.hpp"
#include "probe.hpp"
#include "ring_reader.hpp"
#include "session_options.hpp"

namespace {

using namespace std::chrono;
using namespace moat::bms;

class MoatBms final : public moat::Plugin {
public:
    explicit MoatBms(moat::Context& ctx)
        : ctx_(ctx), state_service_(ctx.loop, ctx.instance, ctx.bus_spec, ctx.log),
          link_(ctx.loop, session_options(ctx.config), ctx.log)
    {
        link_.on_state = [this](const LinkState& s) {
            state_service_.publish(s);
            // Logged when the link comes up or goes down, not for each new decode error.
            if (s.up == logged_up_ && s.sessions == logged_sessions_ && s.failures == logged_failures_) return;
            logged_up_ = s.up, logged_sessions_ = s.sessions, logged_failures_ = s.failures;
            if (s.up) ctx_.log.info("link state: up (session {})", s.sessions);
            else ctx_.log.info("link state: down ({}); {} failures, {} decode errors", s.reason, s.failures, s.decode_errors);
        };
    }

    moat::Task<void> run() override
    {
        co_await state_service_.start();
        auto on_up = [this](LinkSession& s) -> moat::Task<void> { return while_up(s); };
        co_await link_.run(on_up);
    }

    static void validate(const moat::Config& c) { validate_config(c); }

    /// The client commands this plugin declares (`moat-victron moat-bms probe`).
    static std::span<const moat::ClientCommand* const> commands()
    {
        static const moat::ClientCommand* const list[] = {&probe_command};
        return list;
    }

private:
    moat::Task<void> while_up(LinkSession& s)
    {
        RingSnapshot ring = co_await read_ring(s, 0, ctx_.log);
        ctx_.log.info("ring: {} modules", ring.hops);
        std::int64_t gen = -1;
        for (;;) {
            PackInfo p = co_await s.client.info(gen, false, s.info_timeout);
            gen = p.gen;
            ctx_.log.debug("pack {:.3f} V {:.3f} A, relay {}{}", p.u, p.i, p.relay.on ? "on" : "off",
                           p.relay.forced ? (*p.relay.forced ? " (forced on)" : " (forced off)") : "");
        }
    }

    moat::Context& ctx_;
    LinkStateService state_service_;  // outlives link_, whose on_state publishes to it
    Link link_;
    bool logged_up_ = false;
    std::uint64_t logged_sessions_ = 0, logged_failures_ = 0;
};

} // namespace

MOAT_PLUGIN(MoatBms, "moat-bms", "0.1", "Link to a MoaT BMS controller (RP2040) and its diyBMS cell ring", moat::bms::config_keys())
