#include "host.hpp"
#include "config_toml.hpp"

#include <algorithm>
#include <csignal>
#include <map>

#include "config_check.hpp"
#include "last_resort.hpp"
#include "loop_lag.hpp"
#include "moat/signal_watch.hpp"

namespace moat {

namespace {

double secs(Duration d) { return std::chrono::duration<double>(d).count(); }

std::string what_of(std::exception_ptr e) {
    try {
        std::rethrow_exception(e);
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "an exception that is not a std::exception";
    }
}

/// One run of a plugin instance, as the owner of the callbacks its code
/// posts or schedules: one that throws fails the run like run() throwing.
struct RunOwner final : LoopOwner {
    explicit RunOwner(Logger& log) : log(log) {}
    void callback_failed(std::exception_ptr e, const char* where) override {
        log.error("an exception escaped {}: {}", where, what_of(e));
        if (!error) error = e;
        if (scope) scope->cancel();
    }
    Logger& log;
    std::exception_ptr error;
    detail::Scope* scope = nullptr;  ///< while run() runs
};

/// plugin.run(), ended early (with that error) when one of its callbacks fails.
Task<void> run_owned(Plugin& plugin, RunOwner& owner) {
    detail::Fiber& f = co_await detail::this_fiber();
    detail::ScopeGuard guard(f, false);
    owner.scope = &guard.scope();
    std::exception_ptr ended;
    try {
        if (!owner.error) co_await plugin.run();  // (a callback may have failed during the constructor)
    } catch (...) {
        ended = std::current_exception();
    }
    owner.scope = nullptr;
    if (owner.error) std::rethrow_exception(owner.error);
    if (ended) std::rethrow_exception(ended);
}

bool same_section(const InstanceSection& a, const InstanceSection& b) {
    return a.kind == b.kind && a.enabled == b.enabled && *a.table == *b.table;
}

} // namespace

namespace {

struct PluginCheck {
    std::vector<std::string> problems;  ///< recorded or thrown as ConfigError
    std::string failure;                ///< another exception, as a configuration error naming the plugin
};
/// The plugin's own check of its tables: every problem it recorded
/// (Config::problem) and the one it threw. Any other exception it throws is a
/// configuration error naming the plugin (a bug there must not take the host down).
PluginCheck plugin_check(const PreparedInstance& p, const Config& config, const std::string& path) {
    const auto& d = p.library->descriptor();
    if (d.size < offsetof(PluginDescriptor, validate) + sizeof(d.validate) || !d.validate) return {};
    detail::ConfigAccess::take_problems(config);  // (left by an earlier run on this configuration)
    PluginCheck out;
    std::string thrown;
    try {
        d.validate(config);
    } catch (const ConfigError& e) {
        thrown = e.what();
    } catch (const std::exception& e) {
        out.failure = fmt::format("{}:{}: [{}] the check of the configuration by plugin {} failed: {}", path,
                                  p.section.line, p.section.name, p.library->path(), e.what());
    } catch (...) {
        out.failure = fmt::format("{}:{}: [{}] the check of the configuration by plugin {} failed with an "
                             "exception that is not a std::exception",
                                  path, p.section.line, p.section.name, p.library->path());
    }
    out.problems = detail::ConfigAccess::take_problems(config);
    if (!thrown.empty()) out.problems.push_back(std::move(thrown));
    return out;
}

void run_plugin_validate(const PreparedInstance& p, const std::string& path) {
    PluginCheck check = plugin_check(p, p.config, path);
    if (!check.failure.empty()) check.problems.push_back(check.failure);
    if (!check.problems.empty()) throw ConfigError(join_problems(check.problems));
}

/// Two enabled instances claiming one resource (Config::claim) cannot both run.
void check_claims(const std::vector<PreparedInstance>& instances, std::vector<std::string>& problems) {
    struct Holder {
        const PreparedInstance* instance;
        const Config::Claim* claim;
    };
    std::map<std::string, Holder> held;
    for (auto& p : instances) {
        if (!p.library) continue;
        for (auto& c : p.config.claims()) {
            auto [it, fresh] = held.try_emplace(c.resource, Holder{&p, &c});
            if (fresh || it->second.instance == &p) continue;
            problems.push_back(fmt::format("{}: {} is also used by {}", p.config.where(c.key), c.resource,
                                           it->second.instance->config.where(it->second.claim->key)));
        }
    }
}

} // namespace

namespace {
/// The plugin's check on the keys that are valid, after some were not: its
/// problems about other things still count; one it hits because it reads a
/// key that was invalid (absent here) is a consequence, not news.
void run_plugin_validate_on_valid_keys(const PreparedInstance& p, const CheckedKeys& checked, const std::string& path,
                                       std::vector<std::string>& problems) {
    // Config::node() shows the file's node of an invalid table/array key unchecked.
    if (checked.invalid_node_key) return;
    // (A failure that is not a ConfigError came from reading a key that is not valid: already reported.)
    for (auto& text : plugin_check(p, checked.config, path).problems) {
        for (auto& line : new_problems(text, p.section.name, checked.invalid)) problems.push_back(line);
    }
}

PreparedConfig prepare_config_file(const std::string& path, const std::vector<std::string>& plugin_dirs) {
    PreparedConfig out;
    out.file = read_config_file(path, plugin_dirs);
    // Every problem of the file is reported, not only the first: the [host]
    // table's, each instance's keys, each plugin's own check (also on the
    // valid keys of an instance with invalid ones), conflicts between instances.
    std::vector<std::string> problems = out.file.problems;
    for (auto& s : out.file.instances) {
        PreparedInstance p;
        p.section = s;
        if (s.enabled && out.file.plugin_path_known) {
            try {
                p.library = load_plugin(out.file.host.plugin_path, s.kind);
                CheckedKeys checked = check_keys(path, s.name, s.doc, *s.table, p.library->keys());
                p.config = checked.config;
                if (checked.problems.empty()) {
                    run_plugin_validate(p, path);
                } else {
                    problems.insert(problems.end(), checked.problems.begin(), checked.problems.end());
                    run_plugin_validate_on_valid_keys(p, checked, path, problems);
                    p.config = Config();
                }
            } catch (const PluginError& e) {
                const toml::node* kind = s.table->get("kind");
                problems.push_back(
                    fmt::format("{}:{}: [{}] {}", path, kind ? kind->source().begin.line : s.line, s.name, e.what()));
            } catch (const ConfigError& e) {
                problems.push_back(e.what());
            }
        }
        out.instances.push_back(std::move(p));
    }
    check_claims(out.instances, problems);
    if (!problems.empty()) throw ConfigError(join_problems(problems));
    return out;
}
} // namespace

PreparedConfig prepare_config(const std::string& path, const std::vector<std::string>& plugin_dirs) {
    try {
        return prepare_config_file(path, plugin_dirs);
    } catch (const ConfigError&) {
        throw;
    } catch (const std::exception& e) {
        // Whatever failed (a file system error, memory): the file was not loaded.
        throw ConfigError(fmt::format("{}: cannot be loaded: {}", path, e.what()));
    }
}

struct Host::Instance {
    PreparedInstance prepared;
    Logger log;
    std::unique_ptr<Context> ctx;
    TaskRef task;
    const std::string& name() const { return prepared.section.name; }
};

Host::Host(Loop& loop, HostOptions options, PreparedConfig config)
    : loop_(loop), options_(std::move(options)), config_(std::move(config)), log_("host") {}

Host::~Host() {
    // Plugin objects are gone (their tasks ended); now the contexts, then the libraries.
    instances_.clear();
}

int Host::run() {
    auto& hc = config_.file.host;
    stderr_sink()->level = options_.log_level.value_or(hc.log_level);
    stderr_sink()->timestamps = options_.log_timestamps || hc.log_timestamps;
    std::string spec = options_.bus.value_or(hc.bus);
    try {
        bus_ = Bus::open(loop_, spec, log_.child("bus"));
    } catch (const BusError& e) {
        log_.error("{}", e.what());
        return exit_bus;
    }
    monitor_ = std::make_unique<Monitor>(*bus_, Logger("monitor"));
    settings_ = std::make_unique<Settings>(*bus_, *monitor_, Logger("settings"));
    log_.info("moat-victron {} on the {} bus as {}, config {}, {} plugin instance(s)", MOAT_VERSION, spec,
              bus_->unique_name(), config_.file.path,
              std::count_if(config_.instances.begin(), config_.instances.end(), [](auto& p) { return p.library; }));
    if (!options_.faults.empty())
        log_.warning("fault injection is on (MOAT_FAULT): {} — for tests only", options_.faults.describe());
    bus_->on_lost([this](const std::string& why) { begin_stop(exit_bus, fmt::format("D-Bus connection lost: {}", why)); });

    // Once stopping, a second signal is handled outside the loop (last_resort.cpp).
    auto on_stop_signal = [this](int n) { begin_stop(exit_ok, strsignal(n)); };
    SignalWatch term(loop_, SIGTERM, on_stop_signal), intr(loop_, SIGINT, on_stop_signal);
    SignalWatch hup(loop_, SIGHUP, [this](int) {
        if (group_ && !stopping_since_) group_->spawn(reload(), "reload");
    });
    watchdog_ = std::make_unique<LoopWatchdog>(loop_, hc.watchdog, exit_watchdog);
    if (log_.enabled(LogLevel::debug)) loop_lag_ = std::make_unique<LoopLagSampler>(loop_, log_);
    // An exception escaping the host's own callbacks: the plugins still get
    // their safe state, then the process ends with exit_failure.
    loop_.on_unowned_failure([this](std::exception_ptr e, const char* where, const std::string& running) {
        log_.error("internal error: an exception escaped {} posted by {}: {}", where, running, what_of(e));
        if (stopping_since_ && exit_code_ == exit_ok) exit_code_ = exit_failure;
        begin_stop(exit_failure, "internal error");
    });

    try {
        run_until_complete(loop_, main(), "host");
    } catch (const std::exception& e) {
        loop_.on_unowned_failure(nullptr);
        log_.error("internal error: {}", e.what());
        return exit_failure;
    }
    loop_.on_unowned_failure(nullptr);
    watchdog_.reset();
    loop_lag_.reset();
    log_.info("stopped");
    return exit_code_;
}

void Host::begin_stop(int code, std::string_view why) {
    if (stopping_since_) return;
    stopping_since_ = loop_.clock().now();
    exit_code_ = code;
    log_.info("stopping ({}): every plugin goes to its safe state within {} s", why,
              secs(config_.file.host.stop_timeout));
    stop_requested_.set();
    exit_at_once_on_stop_signals(exit_forced);
    // Backstops: a plugin that ignores cancellation must not keep us alive.
    // The loop timer names the laggards; the signal-driven deadline half a second
    // later also works when a plugin blocks the loop.
    auto grace = config_.file.host.stop_timeout + std::chrono::seconds(2);
    backstop_ = Timer(loop_.clock(), loop_.clock().now() + grace, [this] {
        std::string names;
        for (auto& i : instances_)
            if (!i->task.done()) names += (names.empty() ? "" : ", ") + i->name();
        log_.error("plugins did not stop in time ({}); exiting anyway", names.empty() ? "host" : names);
        emergency_exit(exit_forced, nullptr);
    });
    if (watchdog_) watchdog_->final_deadline(grace + std::chrono::milliseconds(500), exit_forced);
}

TimePoint Host::stop_deadline() const {
    return stopping_since_.value_or(loop_.clock().now()) + config_.file.host.stop_timeout;
}

Task<void> Host::main() {
    auto body = [this](TaskGroup& g) -> Task<void> {
        group_ = &g;
        for (auto& p : config_.instances) {
            if (!p.library) {
                log_.info("[{}] disabled", p.section.name);
                continue;
            }
            auto inst = std::make_unique<Instance>(Instance{p, Logger(p.section.name), nullptr, {}});
            start(g, std::move(inst));
        }
        if (instances_.empty()) log_.warning("no plugin is enabled in {}; idling until stopped", config_.file.path);
        co_await stop_requested_.wait();
        g.cancel();
    };
    co_await with_group(body);
    group_ = nullptr;
}

void Host::start(TaskGroup& g, std::unique_ptr<Instance> inst) {
    inst->ctx = std::make_unique<Context>(Context{loop_, *bus_, inst->prepared.config, inst->log, inst->name(),
                                                  bus_->spec(), *monitor_, *settings_, &options_.faults});
    inst->task = g.spawn(supervise(*inst), inst->name());
    instances_.push_back(std::move(inst));
}

Task<void> Host::supervise(Instance& inst) {
    const auto& hc = config_.file.host;
    const auto& desc = inst.prepared.library->descriptor();
    Duration delay = hc.restart_delay;
    detail::Fiber& fiber = co_await detail::this_fiber();
    for (;;) {
        auto started = loop_.clock().now();
        // A new owner per run: a late callback of the last run fails nothing.
        auto owner = std::make_shared<RunOwner>(inst.log);
        fiber.owner = owner;
        std::unique_ptr<Plugin> plugin;
        std::exception_ptr failure;
        bool cancelled = false, config_error = false;
        try {
            try {
                plugin = desc.create(*inst.ctx);
            } catch (const ConfigError&) {
                throw;  // not retried, below
            } catch (const std::exception& e) {
                throw std::runtime_error(
                    fmt::format("cannot start: the factory of {} threw: {}", inst.prepared.library->path(), e.what()));
            }
            inst.log.info("started ({} {})", desc.kind, desc.version);
            co_await run_owned(*plugin, *owner);
            inst.log.info("finished");
        } catch (const Cancelled&) {
            cancelled = true;
        } catch (const ConfigError& e) {
            failure = std::current_exception();
            config_error = true;
            inst.log.error("configuration error: {}", e.what());
        } catch (const std::exception& e) {
            failure = std::current_exception();
            inst.log.error("failed: {}", e.what());
        } catch (...) {
            failure = std::current_exception();
            inst.log.error("failed with an exception that is not a std::exception");
        }
        if (plugin) {
            co_await safe_state(inst, *plugin);
            plugin.reset();
        }
        fiber.owner.reset();
        if (cancelled) throw Cancelled();
        if (!failure) co_return;
        if (config_error) {
            // Retrying cannot fix the file.
            inst.log.error("not restarted until the configuration is reloaded (SIGHUP)");
            co_return;
        }
        if (!desc.restartable) {
            inst.log.error("this plugin is not restartable: it stays stopped until the configuration is reloaded");
            co_return;
        }
        if (loop_.clock().now() - started >= hc.restart_reset_after) delay = hc.restart_delay;
        inst.log.warning("restarting in {:.3g} s", secs(delay));
        co_await sleep_for(delay);
        delay = std::min(std::chrono::duration_cast<Duration>(delay * hc.restart_factor), hc.restart_max_delay);
    }
}

Task<void> Host::safe_state(Instance& inst, Plugin& plugin) {
    try {
        co_await shielded(plugin.safe_state(), stop_deadline());
        inst.log.info("safe state reached");
    } catch (const SafeStateNotReached& e) {
        inst.log.error("safe state NOT reached: {}", e.what());
    } catch (const TimeoutError&) {
        inst.log.error("safe state did not complete before the {} s deadline; abandoned",
                       secs(config_.file.host.stop_timeout));
    } catch (const std::exception& e) {
        inst.log.error("safe state failed: {}", e.what());
    } catch (...) {
        inst.log.error("safe state failed with an exception that is not a std::exception");
    }
}

Task<void> Host::reload() {
    if (reloading_) {
        reload_pending_ = true;
        co_return;
    }
    reloading_ = true;
    // MOAT_FAULT=host:reload: a callback of the host's own (no plugin owns
    // it) throws, so a test can see the internal-error path.
    if (!options_.faults.empty()) loop_.post([this] { options_.faults.pass("host", "reload"); });
    do {
        reload_pending_ = false;
        log_.info("SIGHUP: re-reading {}", config_.file.path);
        PreparedConfig next;
        try {
            next = prepare_config(config_.file.path, options_.plugin_dirs);
        } catch (const std::exception& e) {
            // (prepare_config turns everything into a ConfigError; this also
            // keeps the reload task, a child of the instances' group, from failing it)
            log_.error("{}", e.what());
            log_.error("the new configuration was not applied; the running plugins stay as they are");
            continue;
        }
        auto find = [&](const std::string& name) -> const PreparedInstance* {
            for (auto& p : next.instances)
                if (p.section.name == name) return &p;
            return nullptr;
        };
        // Stop what was removed, disabled or changed (and what ended on its own).
        std::vector<Instance*> stopping;
        for (auto& inst : instances_) {
            const PreparedInstance* p = find(inst->name());
            if (p && p->library && same_section(p->section, inst->prepared.section) && !inst->task.done()) continue;
            const char* why = !p ? "removed from the configuration" : !p->library ? "disabled" : inst->task.done() ? "reloaded" : "configuration changed";
            inst->log.info("stopping: {}", why);
            inst->task.cancel();
            stopping.push_back(inst.get());
        }
        for (auto* inst : stopping) co_await inst->task.join();
        std::erase_if(instances_, [&](auto& i) { return std::find(stopping.begin(), stopping.end(), i.get()) != stopping.end(); });
        // Start what is new or changed.
        for (auto& p : next.instances) {
            if (!p.library) continue;
            bool running = std::any_of(instances_.begin(), instances_.end(), [&](auto& i) { return i->name() == p.section.name; });
            if (running) continue;
            start(*group_, std::make_unique<Instance>(Instance{p, Logger(p.section.name), nullptr, {}}));
        }
        auto& old_host = config_.file.host;
        auto& new_host = next.file.host;
        if (!options_.log_level) stderr_sink()->level = new_host.log_level;
        if (new_host.bus != old_host.bus || new_host.plugin_path != old_host.plugin_path ||
            new_host.watchdog != old_host.watchdog)
            log_.warning("changes to [host] bus, plugin_dir, plugin_path or watchdog take effect at the next start");
        config_ = std::move(next);
        log_.info("configuration reloaded: {} plugin instance(s) running", instances_.size());
    } while (reload_pending_);
    reloading_ = false;
}

} // namespace moat
