// The client of com.victronenergy.settings (venus-dbus.md §11.3, §11.4), on
// top of the Monitor: the monitor reads the service and follows its
// PropertiesChanged signals with the process's one rule for them.
#include "moat/settings.hpp"
#include "bus_call.hpp"
#include "value_dbus.hpp"

#include <algorithm>

namespace moat {

namespace {
using Dict = std::map<std::string, sdbus::Variant>;

Dict entry_of(const SettingSpec& s) {
    Dict d{{"path", sdbus::Variant(s.path)}, {"default", to_variant(s.default_value)}};
    if (s.min.is_valid()) d.emplace("min", to_variant(s.min));
    if (s.max.is_valid()) d.emplace("max", to_variant(s.max));
    if (s.silent) d.emplace("silent", sdbus::Variant(true));
    return d;
}
} // namespace

std::string class_instance_path(std::string_view id) {
    return "/Settings/Devices/" + std::string(id) + "/ClassAndVrmInstance";
}

// ---- subscriptions ---------------------------------------------------------

struct SettingsSubscription::Registry {
    struct Entry {
        std::string path;
        Settings::ChangeFn fn;
    };
    std::map<std::uint64_t, std::shared_ptr<Entry>> entries;
    std::uint64_t next = 1;
};

SettingsSubscription& SettingsSubscription::operator=(SettingsSubscription&& o) noexcept {
    if (this != &o) {
        reset();
        registry_ = std::move(o.registry_);
        id_ = std::exchange(o.id_, 0);
    }
    return *this;
}

void SettingsSubscription::reset() {
    if (auto r = registry_.lock()) r->entries.erase(id_);
    registry_.reset();
    id_ = 0;
}

struct Settings::Waiter {
    std::string path;
    std::optional<Value> value;
    Event event;
};

// ---- Settings --------------------------------------------------------------

Settings::Settings(Bus& bus, Monitor& monitor, Logger log, std::string service)
    : bus_(bus), monitor_(monitor), log_(std::move(log)), service_(std::move(service)),
      registry_(std::make_shared<SettingsSubscription::Registry>()), alive_(std::make_shared<bool>(true)) {}

Settings::~Settings() {
    alive_.reset();
    calls_.clear();  // cancels re-adds under way
}

void Settings::start() {
    if (started_) return;
    started_ = true;
    // Everything from the monitor: one change observer for the whole service.
    changes_ = monitor_.on_change(service_, "", [this](const std::string&, const std::string& path, const Value& v) {
        on_monitor_change(path, v);
    });
    removed_ = monitor_.on_service_removed(service_, [this](const ServiceInfo&) {
        away_ = true;
        log_.warning("{} left the bus; keeping the last values", service_);
    });
    added_ = monitor_.on_service_added(service_, [this](const ServiceInfo&) {
        if (!away_) return;
        away_ = false;
        log_.info("{} is back", service_);
        readd();
    });
}

bool Settings::interesting(const std::string& path) const {
    if (specs_.count(path) || cache_.count(path)) return true;
    for (const auto& [id, e] : registry_->entries)
        if (e->path == path) return true;
    return std::any_of(waiters_.begin(), waiters_.end(), [&](auto& w) { return w->path == path; });
}

void Settings::on_monitor_change(const std::string& path, const Value& v) {
    // Invalid because the service left (not because a setting was removed): keep the last value.
    if (v.is_invalid() && (away_ || !monitor_.service(service_))) return;
    update(path, v);
}

void Settings::update(const std::string& path, const Value& v) {
    if (!interesting(path)) return;
    auto [it, fresh] = cache_.try_emplace(path);
    if (!fresh && it->second == v && it->second.kind() == v.kind()) return;
    Value old_value = std::exchange(it->second, v);
    for (auto wit = waiters_.begin(); wit != waiters_.end();) {
        auto w = *wit;
        if (w->path == path) {
            w->value = v;
            w->event.set();
            wit = waiters_.erase(wit);
        } else ++wit;
    }
    auto registry = registry_;  // an observer may unsubscribe others
    std::vector<std::pair<std::uint64_t, std::shared_ptr<SettingsSubscription::Registry::Entry>>> targets;
    for (auto& [id, e] : registry->entries)
        if (e->path.empty() ? specs_.count(path) > 0 : e->path == path) targets.emplace_back(id, e);
    for (auto& [id, e] : targets) {
        if (!registry->entries.count(id)) continue;
        try {
            e->fn(path, old_value, v);
        } catch (const std::exception& ex) {
            log_.error("a settings observer of {} failed: {}", path, ex.what());
        }
    }
}

Task<bool> Settings::wait(Duration timeout) {
    start();
    auto w = monitor_.wait_for_service(service_, timeout);
    auto s = co_await w;
    co_return s.has_value();
}

void Settings::apply_results(const std::vector<Dict>& results, const std::vector<SettingSpec>& specs,
                             bool throw_on_error) {
    std::optional<SettingsError> first;
    for (std::size_t i = 0; i < results.size() && i < specs.size(); ++i) {
        const Dict& r = results[i];
        const std::string& path = specs[i].path;
        std::int32_t code = 0;
        if (auto e = r.find("error"); e != r.end() && e->second.containsValueOfType<std::int32_t>())
            code = e->second.get<std::int32_t>();
        if (code != 0) {
            log_.error("{} refused the setting {}: error {}", service_, path, code);
            if (!first)
                first.emplace(path, code, fmt::format("{} refused the setting {} (error {})", service_, path, code));
            continue;
        }
        if (auto v = r.find("value"); v != r.end()) {
            try {
                update(path, from_variant(v->second));
            } catch (const std::invalid_argument&) {
            }
        }
    }
    if (first && throw_on_error) throw *first;
}

Task<void> Settings::add(std::vector<SettingSpec> specs, Duration timeout) {
    start();
    auto present = wait(timeout);
    if (!co_await present)
        throw SettingsError("", 0, fmt::format("{} is not on the bus (waited {} s)", service_,
                                               std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
    std::vector<Dict> entries;
    for (const auto& s : specs) {
        entries.push_back(entry_of(s));
        specs_.insert_or_assign(s.path, s);  // before the call: its signals are interesting already
    }
    BusCall c = new_call(bus_, service_, "/", settings_interface, "AddSettings");
    c.msg << entries;
    std::vector<Dict> results;
    try {
        auto reply = co_await BusCallAwaitable(std::move(c), timeout);
        reply >> results;
    } catch (const DBusError& e) {
        throw SettingsError("", 0, fmt::format("AddSettings on {} failed: {}", service_, e.message()));
    } catch (const sdbus::Error& e) {
        throw SettingsError("", 0, fmt::format("AddSettings on {} failed: {}", service_, e.getMessage()));
    }
    apply_results(results, specs, true);
}

void Settings::readd() {
    if (specs_.empty()) return;
    std::vector<SettingSpec> specs;
    std::vector<Dict> entries;
    for (const auto& [path, s] : specs_) {
        specs.push_back(s);
        entries.push_back(entry_of(s));
    }
    BusCall c = new_call(bus_, service_, "/", settings_interface, "AddSettings");
    c.msg << entries;
    calls_.push_back(std::move(c.proxy));
    auto it = std::prev(calls_.end());
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(call_timeout).count();
    try {
        (*it)->callMethod(
            c.msg,
            [this, it, specs, w = std::weak_ptr<bool>(alive_)](sdbus::MethodReply& reply, const sdbus::Error* error) {
                if (!w.lock()) return;
                try {
                    if (error) log_.error("adding the settings again failed: {}", error->getMessage());
                    else {
                        std::vector<Dict> results;
                        reply >> results;
                        apply_results(results, specs, false);
                    }
                } catch (const std::exception& e) {
                    log_.error("adding the settings again failed: {}", e.what());
                }
                // The proxy must outlive this callback.
                bus_.loop().post([this, it, w] {
                    if (w.lock()) calls_.erase(it);
                });
            },
            std::uint64_t(us));
    } catch (const sdbus::Error& e) {
        calls_.erase(it);
        log_.error("adding the settings again failed: {}", e.getMessage());
    }
}

Value Settings::value(std::string_view path) const {
    Value v = monitor_.value(service_, path);
    if (v.is_valid()) return v;
    auto it = cache_.find(std::string(path));
    return it == cache_.end() ? Value() : it->second;
}

Task<int> Settings::set(std::string path, Value value, Duration timeout) {
    start();
    auto call = busitem_set_value(bus_, service_, path, std::move(value), timeout);
    SetValueResult r = co_await call;
    if (!r.error.empty()) log_.warning("SetValue {} on {}: {}", path, service_, r.error);
    const int result = r.code;
    // The signal came before the reply: the monitor has the stored value now.
    if (result == 0)
        if (Value stored = monitor_.value(service_, path); stored.is_valid()) update(path, stored);
    co_return result;
}

SettingsSubscription Settings::on_change(std::string path, ChangeFn fn) {
    start();
    auto id = registry_->next++;
    registry_->entries.emplace(id, std::make_shared<SettingsSubscription::Registry::Entry>(
                                       SettingsSubscription::Registry::Entry{std::move(path), std::move(fn)}));
    return SettingsSubscription(registry_, id);
}

Task<std::optional<Value>> Settings::wait_for_change(std::string path, Duration timeout) {
    start();
    auto w = std::make_shared<Waiter>();
    w->path = path;
    waiters_.push_back(w);
    struct Unregister {
        Settings* self;
        std::weak_ptr<bool> alive;
        std::shared_ptr<Waiter> w;
        ~Unregister() {
            if (alive.lock()) self->waiters_.remove(w);
        }
    };
    Unregister guard{this, alive_, w};
    Clock& clock = bus_.loop().clock();
    Timer timer(clock, clock.now() + timeout, [w] { w->event.set(); });
    co_await w->event.wait();
    co_return w->value;
}

Task<ClassInstance> Settings::device_instance(std::string id, std::string device_class, std::int64_t preferred,
                                              Duration timeout) {
    const std::string path = class_instance_path(id);
    std::vector<SettingSpec> specs{SettingSpec{path, Value(device_class + ":" + std::to_string(preferred))}};
    co_await add(std::move(specs), timeout);
    Value v = value(path);
    auto ci = v.is_string() ? parse_class_instance(v.as_string()) : std::nullopt;
    if (!ci) throw SettingsError(path, 0, fmt::format("{} holds {:r}, not <class>:<instance>", path, v));
    co_return *ci;
}

SettingsSubscription Settings::on_device_instance(std::string id, std::function<void(const ClassInstance&)> fn) {
    return on_change(class_instance_path(id), [fn = std::move(fn)](const std::string&, const Value&, const Value& v) {
        if (!v.is_string()) return;
        if (auto ci = parse_class_instance(v.as_string())) fn(*ci);
    });
}

} // namespace moat
