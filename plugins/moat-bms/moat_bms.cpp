// The moat-bms plugin: the link to a MoaT BMS controller (RP2040) and its
// cell ring, kept up with reconnects; the battery model fed by every session;
// com.victronenergy.battery.<app> with the model's limits and, for every
// fault, the safe state; the org.m_o_a_t.bms objects for tools and the
// inverter controller.
#include <moat/command.hpp>
#include <moat/plugin.hpp>

#include <vector>

#include "battery_config.hpp"
#include "battery_service.hpp"
#include "battery_session.hpp"
#include "bms_battery.hpp"
#include "bms_objects.hpp"
#include "config_check.hpp"
#include "link_session.hpp"
#include "link_state_service.hpp"
#include "probe.hpp"
#include "session_options.hpp"

namespace {

using namespace std::chrono;
using namespace moat::bms;

std::string work_path(const moat::Config& c)
{
    const std::string p = c.get_string("work_state");
    return p.empty() ? default_work_path(c.file(), c.get_string("app")) : p;
}

class MoatBms final : public moat::Plugin {
public:
    explicit MoatBms(moat::Context& ctx)
        : ctx_(ctx), options_(battery::read_options(ctx.config)),
          state_service_(ctx.loop, ctx.instance, ctx.bus_spec, ctx.log),
          service_(ctx.loop, ctx.config.get_string("app"), ctx.bus_spec, port_name(ctx.config), options_.serial,
                   ctx.log.child("battery")),
          battery_(ctx.loop, options_, work_path(ctx.config), service_, ctx.log.child("battery")),
          objects_(ctx.loop, service_.bus(), battery_, ctx.config, ctx.log.child("bms")),
          link_(ctx.loop, session_options(ctx.config), ctx.log)
    {
        link_.on_state = [this](const LinkState& s) {
            state_service_.publish(s);
            if (!s.up) {
                // In the loop turn that learnt of it: the battery goes safe (the session's tasks end after).
                objects_.set_session(nullptr);
                battery_.link_down(s.reason);
            }
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
        battery_.load_work();
        objects_.publish();
        auto body = [this](moat::TaskGroup& g) -> moat::Task<void> {
            g.spawn(register_when_ready(), "moat-bms register");
            g.spawn(save_work(), "moat-bms work state");
            auto on_up = [this](LinkSession& s) -> moat::Task<void> { return session(s); };
            co_await link_.run(on_up);
        };
        co_await moat::with_group(body);
    }

    /// Stop or failure: the safe state in one ItemsChanged, the energy saved, then the name goes.
    moat::Task<void> safe_state() override
    {
        battery_.link_down("stopping");
        battery_.save_work();
        co_await service_.stop();
    }

    static void validate(const moat::Config& c)
    {
        validate_config(c);
        validate_battery_keys(c);
    }

    static std::span<const moat::ClientCommand* const> commands()
    {
        static const moat::ClientCommand* const list[] = {&probe_command};
        return list;
    }

    static std::span<const moat::ConfigKey> keys()
    {
        static const std::vector<moat::ConfigKey> all = [] {
            std::vector<moat::ConfigKey> v(config_keys().begin(), config_keys().end());
            v.insert(v.end(), battery::option_keys().begin(), battery::option_keys().end());
            return v;
        }();
        return all;
    }

private:
    static std::string port_name(const moat::Config& c)
    {
        const std::string d = c.get_string("device");
        return d.empty() ? c.get_string("socket") : d;
    }

    moat::Task<void> session(LinkSession& s)
    {
        objects_.set_session(&s);
        // The live D-Bus calls run beside the session's own tasks and end with them.
        auto body = [this, &s](moat::TaskGroup& g) -> moat::Task<void> {
            g.spawn(objects_.serve(s), "moat-bms live calls");
            co_await run_battery_session(s, battery_, ctx_.config, objects_.events(), ctx_.log);
        };
        co_await moat::with_group(body);
    }

    /// The device instance from the settings service (the preferred one
    /// without it), then the name once the battery is first ready.
    moat::Task<void> register_when_ready()
    {
        std::int64_t instance = options_.device_instance;
        auto up = ctx_.settings.wait(seconds(3));
        if (co_await up) {
            const std::string id = "moat_bms_" + (options_.serial.empty() ? ctx_.config.get_string("app") : options_.serial);
            try {
                auto alloc = ctx_.settings.device_instance(id, "battery", options_.device_instance);
                auto ci = co_await alloc;
                instance = ci.instance;
            } catch (const moat::SettingsError& e) {
                ctx_.log.warning("device instance not allocated ({}); using {}", e.what(), instance);
            }
        } else {
            ctx_.log.warning("no settings service: /DeviceInstance {} (device_instance)", instance);
        }
        service_.set_device_instance(instance);
        co_await battery_.ready.wait();
        co_await service_.start();
    }

    moat::Task<void> save_work()
    {
        for (;;) {
            co_await moat::sleep_for(duration_cast<moat::Duration>(duration<double>(options_.work_save_s)));
            battery_.save_work();
            ctx_.fault_point("save");  // a test's plugin failure: the safe state before the restart
        }
    }

    moat::Context& ctx_;
    battery::Options options_;
    LinkStateService state_service_;
    BatteryService service_;
    BmsBattery battery_;   // publishes to service_
    BmsObjects objects_;   // on service_'s connection
    Link link_;            // its on_state reaches the three above
    bool logged_up_ = false;
    std::uint64_t logged_sessions_ = 0, logged_failures_ = 0;
};

} // namespace

MOAT_PLUGIN(MoatBms, "moat-bms", "0.2", "A MoaT BMS controller (RP2040) and its diyBMS cell ring as a Victron battery",
            MoatBms::keys())
