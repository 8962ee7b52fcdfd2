// guard: watches the critical ESS settings (OvervoltageFeedIn, ESS mode,
// DVCC, the BMS charge voltage, the debug offsets, ...) on every change and
// every `interval` seconds, publishes what it sees as
// com.victronenergy.moatguard, logs each change of a check's state once, and
// fixes the checks listed in `fix` (write, read back, detect a write war).
// The checks themselves live in plugins/shared/critical-settings.
#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <moat/plugin.hpp>
#include <moat/service.hpp>

#include "checks.hpp"
#include "guard_command.hpp"
#include "patches_command.hpp"
#include "reading.hpp"
#include "write_war.hpp"

namespace moat::guard {
namespace {

using namespace std::chrono_literals;
using critical::Reading;
using critical::State;

constexpr Duration call_timeout = 5s;

Duration seconds_key(const Config& c, std::string_view key) {
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(c.get_number(key)));
}

/// The elements of a string-list key with their nodes (for errors with a line number).
std::vector<std::pair<std::string, ConfigNode>> names_of(const Config& c, std::string_view key) {
    std::vector<std::pair<std::string, ConfigNode>> out;
    const ConfigNode n = c.node(key);
    for (std::size_t i = 0; i < n.size(); ++i)
        if (auto s = n.at(i).as_string()) out.emplace_back(*s, n.at(i));
    return out;
}

std::string known_names(bool fixable_only) {
    std::string out;
    for (const critical::Check& c : critical::checks())
        if (!fixable_only || c.safe_value) out += (out.empty() ? "" : ", ") + std::string(c.name);
    return out;
}

Task<void> wait_event(Event& e) { co_await e.wait(); }

/// One check as the plugin follows it.
struct Watched {
    explicit Watched(const critical::Check& c, bool fix_it, critical::WriteWarPolicy policy)
        : check(&c), fix(fix_it), war(policy) {}
    const critical::Check* check;
    bool fix;
    std::string service;  ///< where the value was last read ("" = no such service)
    Reading reading;
    critical::Verdict verdict;
    State state = State::unknown;  ///< published: the verdict, critical on a failed fix or a write war
    bool logged = false;           ///< its state was logged once
    std::string logged_value;      ///< the value at the last logged state
    bool was_bad = false;
    bool fix_wanted = false;
    bool fix_failed = false;
    bool war_logged = false;
    std::string fix_status;
    critical::WriteWar war;
    Item* state_item = nullptr;
    Item* value_item = nullptr;
    Item* text_item = nullptr;
    Item* fix_item = nullptr;
};

class GuardPlugin final : public Plugin {
public:
    /// `moat-victron guard` and the patch manager `moat-victron patches` come with this plugin.
    static std::span<const ClientCommand* const> commands() {
        static const ClientCommand* const list[] = {&guard_command, &patches_command};
        return list;
    }

    /// --check-config and each start: every name in `fix` and `ignore` is a check; fixed ones have a safe value.
    static void validate(const Config& c) {
        std::set<std::string> ignored;
        for (auto& [name, node] : names_of(c, "ignore")) {
            if (!critical::find_check(name))
                c.problem_at(node, "key 'ignore'", fmt::format("unknown check '{}' (checks: {})", name, known_names(false)));
            ignored.insert(name);
        }
        for (auto& [name, node] : names_of(c, "fix")) {
            const critical::Check* check = critical::find_check(name);
            if (!check)
                c.problem_at(node, "key 'fix'", fmt::format("unknown check '{}' (fixable: {})", name, known_names(true)));
            else if (!check->safe_value)
                c.problem_at(node, "key 'fix'", fmt::format("'{}' has no safe value to write (fixable: {})", name,
                                                            known_names(true)));
            if (ignored.count(name)) c.problem_at(node, "key 'fix'", fmt::format("'{}' is also ignored", name));
        }
        if (auto name = c.get_string("service"); !name.empty()) c.claim("service", "the D-Bus name " + name);
        c.throw_problems();  // (the constructor runs this check too)
    }

    explicit GuardPlugin(Context& ctx) : ctx_(ctx) {
        validate(ctx.config);
        interval_ = seconds_key(ctx.config, "interval");
        planned_export_ = ctx.config.get_number("planned_export");
        critical::WriteWarPolicy policy{seconds_key(ctx.config, "war_window"),
                                        static_cast<int>(ctx.config.get_int("war_limit"))};
        auto listed = [&](std::string_view key) {
            auto v = ctx.config.get_strings(key);
            return std::set<std::string, std::less<>>(v.begin(), v.end());
        };
        auto fix = listed("fix"), ignore = listed("ignore");
        for (const critical::Check& c : critical::checks())
            if (!ignore.count(c.name)) watched_.emplace_back(c, fix.count(c.name) > 0, policy);
    }

    Task<void> run() override {
        if (auto name = ctx_.config.get_string("service"); !name.empty()) {
            create_service(name);
            co_await service_->start();
        }
        follow(ctx_.monitor);
        subscribe();
        ctx_.log.info("watching {} checks every {:g} s{}", watched_.size(),
                      std::chrono::duration<double>(interval_).count(), fix_list());
        auto& clock = ctx_.loop.clock();
        TimePoint next = clock.now();
        for (;;) {
            if (reread_requested_ || clock.now() >= next) {
                reread_requested_ = false;
                co_await reread_all();
                next = clock.now() + interval_;
            }
            for (Watched& w : watched_)
                if (w.fix_wanted && w.war.may_fix()) co_await fix(w);
            if (reread_requested_ || std::any_of(watched_.begin(), watched_.end(), [](auto& w) {
                    return w.fix_wanted && w.war.may_fix();
                }))
                continue;
            wake_.clear();
            try {
                auto waiting = with_timeout(std::max(Duration::zero(), next - clock.now()), wait_event(wake_));
                co_await waiting;
            } catch (const TimeoutError&) {
            }
        }
    }

    Task<void> safe_state() override {
        // The guard writes no setpoint; its service goes so nobody reads a stale "ok".
        subscriptions_.clear();
        if (service_ && service_->started()) co_await service_->stop();
    }

private:
    std::string fix_list() const {
        std::string out;
        for (const Watched& w : watched_)
            if (w.fix) out += (out.empty() ? "" : ", ") + std::string(w.check->name);
        return out.empty() ? "" : "; fixing " + out;
    }

    void create_service(const std::string& name) {
        service_ = std::make_unique<Service>(ctx_.loop, name, ctx_.bus_spec, ctx_.log.child("dbus"));
        service_->add_mandatory(DeviceInfo{
            .process_name = "moat-victron",
            .process_version = "guard 1.0",
            .connection = "instance " + ctx_.instance,
            .device_instance = ctx_.config.get_int("device_instance"),
            .product_id = 0xFFFF,
            .product_name = "MoaT critical settings guard",
            .firmware_version = Value(),
            .hardware_version = Value(),
            .connected = 1,
        });
        auto states = format::table({{0, "ok"}, {1, "warning"}, {2, "critical"}, {3, "unknown"}});
        for (Watched& w : watched_) {
            const std::string base = fmt::format("/Checks/{}/", w.check->name);
            w.state_item = &service_->add(base + "State", 3, ItemOptions().text(states));
            w.value_item = &service_->add(base + "Value", Value());
            service_->add(base + "Expected", std::string(w.check->expected));
            w.text_item = &service_->add(base + "Text", "not read yet");
            w.fix_item = &service_->add(base + "Fix", w.fix ? "ready" : "off");
            service_->add(base + "Service", Value());
            service_->add(base + "Path", std::string(w.check->path));
        }
        critical_item_ = &service_->add("/Critical", 0);
        warnings_item_ = &service_->add("/Warnings", 0);
        unknown_item_ = &service_->add("/Unknown", static_cast<int>(watched_.size()));
        alarm_item_ = &service_->add("/Alarms/CriticalSettings", 1,
                                     ItemOptions().text(format::table({{0, "ok"}, {1, "warning"}, {2, "alarm"}})));
    }

    void subscribe() {
        std::set<std::pair<std::string, std::string>> seen;
        for (const Watched& w : watched_) {
            std::string cls = role_class(w.check->role);
            if (!seen.emplace(cls, std::string(w.check->path)).second) continue;
            subscriptions_.push_back(ctx_.monitor.on_change(
                cls, std::string(w.check->path),
                [this](const std::string& service, const std::string& path, const Value& v) { changed(service, path, v); }));
        }
        // Which Multi and battery count may change; a service that (re)appears is read afresh.
        for (const char* path : {"/VebusService", "/Dc/Battery/BatteryService"})
            subscriptions_.push_back(ctx_.monitor.on_change(system_service, path,
                                                            [this](auto&, auto&, auto&) { request_reread(); }));
        for (critical::Role r : {critical::Role::settings, critical::Role::system, critical::Role::vebus,
                                 critical::Role::battery}) {
            subscriptions_.push_back(ctx_.monitor.on_service_added(role_class(r), [this](auto&) { request_reread(); }));
            subscriptions_.push_back(ctx_.monitor.on_service_removed(role_class(r), [this](auto&) { request_reread(); }));
        }
    }

    void request_reread() {
        reread_requested_ = true;
        wake_.set();
    }

    /// A change signal: newer than any re-read.
    void changed(const std::string& service, const std::string& path, const Value& v) {
        bool any = false;
        for (Watched& w : watched_) {
            if (w.check->path != path || service_for(ctx_.monitor, w.check->role) != service) continue;
            w.service = service;
            w.reading = Reading{v.is_valid() || ctx_.monitor.seen(service, path), v};
            any = true;
        }
        if (any && first_read_done_) evaluate_all();
    }

    Task<void> reread_all() {
        for (Watched& w : watched_) {
            w.service = service_for(ctx_.monitor, w.check->role);
            auto reading = read_now(ctx_.bus, w.service, std::string(w.check->path), call_timeout);
            w.reading = co_await reading;
        }
        first_read_done_ = true;
        // A failed fix is tried again once per re-read while the value stays bad.
        for (Watched& w : watched_)
            if (w.fix && w.fix_failed && w.was_bad && w.war.may_fix()) w.fix_wanted = true;
        evaluate_all();
        // Numbered: the logger folds identical lines, and tests wait for the next re-read.
        ctx_.log.debug("re-read #{} of {} checks: {} critical, {} warning, {} unknown", ++rereads_, watched_.size(),
                       count(State::critical), count(State::warning), count(State::unknown));
    }

    std::size_t count(State s) const {
        return static_cast<std::size_t>(
            std::count_if(watched_.begin(), watched_.end(), [s](const Watched& w) { return w.state == s; }));
    }

    const Reading* reading_of(std::string_view name) const {
        for (const Watched& w : watched_)
            if (w.check->name == name) return &w.reading;
        return nullptr;
    }

    /// Judge every check again (one check's value is another's fact), then
    /// publish, log state changes and ask for fixes.
    void evaluate_all() {
        const Reading* bms = reading_of("BmsChargeVoltage");
        const critical::Facts facts = facts_from(bms ? *bms : Reading{}, planned_export_);
        const TimePoint now = ctx_.loop.clock().now();
        auto batch = service_ ? std::optional<Service::Batch>(service_->batch()) : std::nullopt;
        for (Watched& w : watched_) {
            w.verdict = critical::evaluate(*w.check, w.reading, facts);
            const bool bad = w.reading.present &&
                             (w.verdict.state == State::warning || w.verdict.state == State::critical);
            if (w.fix) watch_fix(w, bad, now);
            w.was_bad = bad;
            publish(w);
        }
        if (service_) {
            critical_item_->set(static_cast<int>(count(State::critical)));
            warnings_item_->set(static_cast<int>(count(State::warning)));
            unknown_item_->set(static_cast<int>(count(State::unknown)));
            State worst = State::ok;
            for (const Watched& w : watched_) worst = critical::worse(worst, w.state);
            alarm_item_->set(critical::alarm_level(worst));
        }
    }

    void watch_fix(Watched& w, bool bad, TimePoint now) {
        if (bad && !w.was_bad && w.war.turned_back(now) && !w.war_logged) declare_war(w);
        if (!bad && w.reading.present) {
            w.fix_failed = false;
            if (w.war.at_war()) {
                w.war.calm();
                w.war_logged = false;
                w.fix_status = "ready";
                ctx_.log.info("{}: the write war is over, {} is {} again", w.check->name, w.check->path,
                              text(w.reading.value));
            }
        }
        if (bad && w.war.may_fix() && !w.fix_failed && !w.fix_wanted) {
            w.fix_wanted = true;
            wake_.set();
        }
    }

    void declare_war(Watched& w) {
        w.war_logged = true;
        w.fix_wanted = false;
        w.fix_status = fmt::format("write war: turned back to {} {} times", text(w.reading.value), w.war.turn_backs());
        ctx_.log.error("{}: write war: {} {} was turned back to {} within {:g} s of our fix {} times in a row; "
                       "not fixing it again until it is {} (find what writes it)",
                       w.check->name, w.service, w.check->path, text(w.reading.value),
                       std::chrono::duration<double>(seconds_key(ctx_.config, "war_window")).count(),
                       w.war.turn_backs(), text(*w.check->safe_value));
    }

    void publish(Watched& w) {
        State state = w.verdict.state;
        std::string text = w.verdict.text;
        if (w.fix && w.war.at_war()) {
            state = State::critical;
            text += "; " + w.fix_status;
        } else if (w.fix && w.fix_failed) {
            state = State::critical;
            text += "; fix failed: " + w.fix_status;
        }
        if (first_read_done_ && (!w.logged || state != w.state)) log_state(w, state, text);
        w.state = state;
        if (!service_) return;
        w.state_item->set(static_cast<int>(state));
        w.value_item->set(w.reading.value);
        w.text_item->set(text);
        if (w.fix) w.fix_item->set(w.fix_status.empty() ? "ready" : w.fix_status);
        service_->set(fmt::format("/Checks/{}/Service", w.check->name),
                      w.service.empty() ? Value() : Value(w.service));
    }

    void log_state(Watched& w, State state, const std::string& text) {
        const std::string where = w.service.empty()
                                      ? fmt::format("(no {} service) {}", critical::to_string(w.check->role), w.check->path)
                                      : fmt::format("{} {}", w.service, w.check->path);
        std::string line = fmt::format("{} is {}: {} = {} (expected {}): {}", w.check->name, critical::to_string(state),
                                       where, moat::text(w.reading.value), w.check->expected, text);
        const bool before = w.logged;
        // The old value and the log's time stamp are what there is to find the writer by: Venus's
        // change signals do not say who wrote a value.
        if (before) line += fmt::format(" (was {}, value {})", critical::to_string(w.state), w.logged_value);
        w.logged = true;
        w.logged_value = moat::text(w.reading.value);
        switch (state) {
        case State::critical: ctx_.log.error("{}", line); break;
        case State::warning:
        case State::unknown: ctx_.log.warning("{}", line); break;
        case State::ok:
            if (before) ctx_.log.info("{}", line);
            else ctx_.log.debug("{}", line);
        }
    }

    void fail_fix(Watched& w, std::string why) {
        // Retried on every re-read: logged again only when the reason changes.
        if (!w.fix_failed || w.fix_status != why) ctx_.log.error("{}: fix failed: {}", w.check->name, why);
        w.fix_failed = true;
        w.fix_status = std::move(why);
        evaluate_all();
    }

    /// Write the safe value, read it back from the service itself.
    Task<void> fix(Watched& w) {
        w.fix_wanted = false;
        const Value safe = *w.check->safe_value;
        const std::string path(w.check->path), service = w.service;
        if (w.fix_failed)
            ctx_.log.debug("{}: trying the fix again: writing {} to {} {}", w.check->name, text(safe), service, path);
        else
            ctx_.log.warning("{}: fixing: writing {} to {} {} (it is {})", w.check->name, text(safe), service, path,
                             text(w.reading.value));
        const TimePoint written = ctx_.loop.clock().now();
        int rc = co_await ctx_.monitor.set_value(service, path, safe, call_timeout);
        if (rc != 0) {
            fail_fix(w, fmt::format("{} refused the write of {} to {} (SetValue result {})", service, text(safe), path, rc));
            co_return;
        }
        auto reading = read_now(ctx_.bus, service, path, call_timeout);
        Reading back = co_await reading;
        if (!back.present) {
            fail_fix(w, fmt::format("{} {} could not be read back", service, path));
            co_return;
        }
        w.reading = back;
        if (back.value == safe) {
            w.war.fixed(ctx_.loop.clock().now());
            w.fix_failed = false;
            w.fix_status = "fixed";
            ctx_.log.info("{}: fixed: {} {} reads back {}", w.check->name, service, path, text(back.value));
        } else {
            // Already turned back (or not stored): counts towards a write war.
            w.war.fixed(written);
            if (w.war.turned_back(ctx_.loop.clock().now())) {
                if (!w.war_logged) declare_war(w);
            } else {
                ctx_.log.warning("{}: {} {} reads back {} right after writing {}; trying again", w.check->name, service,
                                 path, text(back.value), text(safe));
                w.fix_wanted = true;
            }
        }
        evaluate_all();
    }

    Context& ctx_;
    Duration interval_;
    double planned_export_ = 0;
    std::vector<Watched> watched_;
    std::vector<Subscription> subscriptions_;
    Event wake_;
    bool reread_requested_ = true;
    bool first_read_done_ = false;
    std::uint64_t rereads_ = 0;
    std::unique_ptr<Service> service_;
    Item* critical_item_ = nullptr;
    Item* warnings_item_ = nullptr;
    Item* unknown_item_ = nullptr;
    Item* alarm_item_ = nullptr;
};

const ConfigKey keys[] = {
    {"interval", KeyType::number, "10", "s between re-reads of every check (changes are seen at once anyway)", 0.1,
     3600},
    {"fix", KeyType::string_list, "[]",
     "checks to correct by writing their safe value (OvervoltageFeedIn, SolarVoltageOffset, VebusVoltageOffset, "
     "CurrentOffset)"},
    {"ignore", KeyType::string_list, "[]", "checks that do not apply here (e.g. AssistantId on a GX without ESS)"},
    {"planned_export", KeyType::number, "0", "W: MaxFeedInPower below this is a warning (0 = no such check)", 0, 1e7},
    {"war_window", KeyType::number, "10", "s: a fixed value turned back this soon counts towards a write war", 0.1,
     3600},
    {"war_limit", KeyType::integer, "3", "fixes turned back in a row that make a write war (then no more fixing)", 1,
     100},
    {"service", KeyType::string, "\"com.victronenergy.moatguard\"",
     "D-Bus name of the service that publishes the checks (\"\" = do not publish)"},
    {"device_instance", KeyType::integer, "0", "/DeviceInstance of that service", 0, 65535},
};

} // namespace
} // namespace moat::guard

MOAT_PLUGIN(moat::guard::GuardPlugin, "guard", "1.0",
            "Watches the critical ESS settings (OvervoltageFeedIn, ESS mode, DVCC, ...), publishes and optionally fixes them",
            moat::guard::keys)
