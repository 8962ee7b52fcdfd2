#include "moat/monitor.hpp"
#include "bus_call.hpp"
#include "busitem_read.hpp"
#include "value_dbus.hpp"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

namespace moat {

namespace {

constexpr const char* busitem = "com.victronenergy.BusItem";
constexpr const char* dbus_name = "org.freedesktop.DBus";
constexpr const char* dbus_path = "/org/freedesktop/DBus";
constexpr std::string_view venus_namespace = "com.victronenergy.";

// The three rules of the whole process (§10.2). NameOwnerChanged is sent by
// the daemon itself; the two BusItem signals come from any sender and are
// attributed through the sender's unique name.
constexpr const char* rule_name_owner =
    "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
    "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0namespace='com.victronenergy'";
constexpr const char* rule_items_changed =
    "type='signal',interface='com.victronenergy.BusItem',member='ItemsChanged',path='/'";
constexpr const char* rule_properties_changed =
    "type='signal',interface='com.victronenergy.BusItem',member='PropertiesChanged'";

enum Kind { change_event = 0, added_event = 1, removed_event = 2 };

} // namespace

std::string service_class(std::string_view service) {
    std::size_t pos = 0;
    for (int i = 0; i < 3; ++i) {
        pos = service.find('.', pos);
        if (pos == std::string_view::npos) return std::string(service);
        if (i < 2) ++pos;
    }
    return std::string(service.substr(0, pos));
}

bool pattern_matches(std::string_view pattern, std::string_view service) {
    if (pattern.empty() || !service.starts_with(pattern)) return false;
    if (service.size() == pattern.size()) return true;
    return pattern.back() == '.' || service[pattern.size()] == '.';
}

// ---- subscriptions -------------------------------------------------------

struct Subscription::Registry {
    struct Entry {
        int kind;
        std::string pattern, path;
        Monitor::ChangeFn change;
        Monitor::ServiceFn service;
        Loop::CallbackOrigin origin;  ///< who subscribed: answers for the observer's exceptions
    };
    std::map<std::uint64_t, std::shared_ptr<Entry>> entries;
    std::uint64_t next = 1;
    std::size_t count[3] = {0, 0, 0};
};

Subscription& Subscription::operator=(Subscription&& o) noexcept {
    if (this != &o) {
        reset();
        registry_ = std::move(o.registry_);
        id_ = std::exchange(o.id_, 0);
    }
    return *this;
}

void Subscription::reset() {
    if (auto r = registry_.lock()) {
        auto it = r->entries.find(id_);
        if (it != r->entries.end()) {
            --r->count[it->second->kind];
            r->entries.erase(it);
        }
    }
    registry_.reset();
    id_ = 0;
}

// ---- state ---------------------------------------------------------------

struct Monitor::Item {
    Value value;
    std::string text;
    TimePoint updated{};
    bool seen = false;   ///< set by a signal or the scan; a scan never overwrites it
    bool stale = false;  ///< its max age passed without an update: reads as invalid
    Timer expiry;
    const Value& effective() const {
        static const Value none;
        return stale ? none : value;
    }
};

struct Monitor::Service {
    std::string name, owner;
    std::uint64_t id;  ///< tells a reply for this record from one for an earlier owner
    bool ready = false;
    std::unordered_map<std::string, Item> items;
};

struct Monitor::Event {
    int kind;
    ServiceInfo info;  ///< for a change: only the name
    std::string path;
    Value value;
};

struct Monitor::PendingCall {
    std::unique_ptr<sdbus::IProxy> proxy;
    bool finished = false;
};

Monitor::Monitor(Bus& bus, Logger log)
    : bus_(bus), log_(std::move(log)), registry_(std::make_shared<Subscription::Registry>()),
      alive_(std::make_shared<bool>(true)) {}

Monitor::~Monitor() {
    alive_.reset();
    // Dropping the proxies cancels their pending calls: no reply callback runs after this.
    calls_.clear();
    slots_.clear();
    // A task still waiting (it should not be) never hears from us again.
    for (auto* w : change_waiters_) w->monitor_ = nullptr, w->registered_ = false;
    for (auto* w : service_waiters_) w->monitor_ = nullptr, w->registered_ = false;
}

std::size_t Monitor::calls_in_flight() const {
    return std::size_t(std::count_if(calls_.begin(), calls_.end(), [](auto& c) { return !c.finished; }));
}

bool Monitor::followed(std::string_view name) const {
    return std::any_of(patterns_.begin(), patterns_.end(), [&](auto& p) { return pattern_matches(p, name); });
}

void Monitor::watch(std::string_view pattern) {
    if (followed(pattern)) return;
    if (!pattern.starts_with(venus_namespace))
        throw std::invalid_argument(fmt::format("monitor: '{}' is not in the com.victronenergy namespace", pattern));
    if (!started_) start();
    patterns_.emplace_back(pattern);
    log_.debug("following {}", pattern);
    list_names(std::string(pattern));
}

void Monitor::start() {
    auto guarded = [this](void (Monitor::*handler)(sdbus::Message&), const char* what) {
        return [this, handler, what](sdbus::Message& msg) {
            // sdbus-c++ only catches sdbus::Error: nothing may leave this handler.
            try {
                (this->*handler)(msg);
            } catch (const std::exception& e) {
                log_.warning("dropped a {} signal from {}: {}", what, msg.getSender(), e.what());
            } catch (...) {
                log_.warning("dropped a {} signal from {}", what, msg.getSender());
            }
        };
    };
    auto& conn = detail::connection(bus_);
    // Subscribe before ListNames, so that no service can appear unseen (§10.2).
    std::vector<sdbus::Slot> slots;
    slots.push_back(conn.addMatch(rule_name_owner, guarded(&Monitor::on_name_owner_changed, "NameOwnerChanged")));
    slots.push_back(conn.addMatch(rule_items_changed, guarded(&Monitor::on_items_changed, "ItemsChanged")));
    slots.push_back(conn.addMatch(rule_properties_changed, guarded(&Monitor::on_properties_changed, "PropertiesChanged")));
    slots_ = std::move(slots);
    started_ = true;
}

// ---- calls ---------------------------------------------------------------

void Monitor::send(BusCall c, Duration timeout, ReplyFn fn) {
    sweep_calls();
    auto shared = std::make_shared<ReplyFn>(std::move(fn));
    calls_.push_back(PendingCall{std::move(c.proxy)});
    auto it = std::prev(calls_.end());
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout).count();
    try {
        it->proxy->callMethod(
            c.msg,
            [this, it, shared, what = c.what](sdbus::MethodReply& reply, const sdbus::Error* error) {
                try {
                    (*shared)(reply, error);
                } catch (const std::exception& e) {
                    log_.error("handling the reply of {}: {}", what, e.what());
                } catch (...) {
                    log_.error("handling the reply of {}: unknown exception", what);
                }
                // The proxy must live until sdbus-c++ is done with this callback.
                it->finished = true;
                bus_.loop().post([w = std::weak_ptr<bool>(alive_), this] {
                    if (w.lock()) sweep_calls();
                });
            },
            std::uint64_t(us));
    } catch (const sdbus::Error& e) {
        calls_.erase(it);
        bus_.loop().post([w = std::weak_ptr<bool>(alive_), shared, error = e] {
            if (!w.lock()) return;
            sdbus::MethodReply none;
            try {
                (*shared)(none, &error);
            } catch (...) {
            }
        });
    }
}

void Monitor::sweep_calls() {
    calls_.remove_if([](const PendingCall& c) { return c.finished; });
}

// ---- discovery -----------------------------------------------------------

void Monitor::list_names(std::string pattern) {
    send(new_call(bus_, dbus_name, dbus_path, dbus_name, "ListNames"), call_timeout,
         [this, pattern](sdbus::MethodReply& reply, const sdbus::Error* error) {
             if (error) {
                 log_.error("ListNames failed: {}", error->getMessage());
                 return;
             }
             std::vector<std::string> names;
             reply >> names;
             for (auto& name : names) {
                 if (!pattern_matches(pattern, name) || services_.count(name)) continue;
                 auto call = new_call(bus_, dbus_name, dbus_path, dbus_name, "GetNameOwner");
                 call.msg << name;
                 send(std::move(call), call_timeout, [this, name](sdbus::MethodReply& r, const sdbus::Error* e) {
                     if (e) return;  // gone again; NameOwnerChanged told us or will
                     std::string owner;
                     r >> owner;
                     appear(name, owner, true);
                 });
             }
         });
}

void Monitor::on_name_owner_changed(sdbus::Message& msg) {
    std::string name, old_owner, new_owner;
    msg >> name >> old_owner >> new_owner;
    if (!followed(name)) return;
    if (!old_owner.empty()) vanish(name, old_owner);
    if (!new_owner.empty()) appear(name, new_owner, false);
}

void Monitor::appear(const std::string& name, const std::string& owner, bool from_listing) {
    if (auto it = services_.find(name); it != services_.end()) {
        // A listing answer is older than any NameOwnerChanged we handled since.
        if (from_listing || it->second->owner == owner) return;
        remove(name, "has a new owner");
    }
    auto s = std::make_unique<Service>();
    s->name = name;
    s->owner = owner;
    s->id = next_id_++;
    Service& ref = *s;
    services_.emplace(name, std::move(s));
    by_owner_.emplace(owner, &ref);
    log_.debug("{} ({}) appeared: reading it", name, owner);
    scan(ref);
}

void Monitor::vanish(const std::string& name, const std::string& old_owner) {
    auto it = services_.find(name);
    if (it != services_.end() && it->second->owner == old_owner) remove(name, "left the bus");
}

void Monitor::remove(const std::string& name, const char* why) {
    auto it = services_.find(name);
    if (it == services_.end()) return;
    std::unique_ptr<Service> s = std::move(it->second);
    services_.erase(it);
    auto [b, e] = by_owner_.equal_range(s->owner);
    for (auto o = b; o != e; ++o)
        if (o->second == s.get()) {
            by_owner_.erase(o);
            break;
        }
    if (!s->ready) {
        log_.debug("{} {} before it was read", name, why);
        return;
    }
    log_.info("{} {}", name, why);
    emit(Event{removed_event, info(*s), {}, {}});
    // Its values are not trusted any more (§10.5): observers of each path see invalid.
    for (auto& [path, item] : s->items)
        if (item.effective().is_valid()) changed(name, path, Value());
}

Monitor::Service* Monitor::current(const std::string& name, std::uint64_t id) {
    auto it = services_.find(name);
    return it != services_.end() && it->second->id == id ? it->second.get() : nullptr;
}

Monitor::Service* Monitor::find(std::string_view name) {
    auto it = services_.find(name);
    return it != services_.end() && it->second->ready ? it->second.get() : nullptr;
}

Monitor::Item* Monitor::find(std::string_view service, std::string_view path) {
    Service* s = find(service);
    if (!s) return nullptr;
    auto it = s->items.find(std::string(path));
    return it != s->items.end() ? &it->second : nullptr;
}

// ---- scanning ------------------------------------------------------------

namespace {

} // namespace

void Monitor::scan(Service& s) {
    send(new_call(bus_, s.owner, "/", busitem, "GetItems"), call_timeout,
         [this, name = s.name, id = s.id](sdbus::MethodReply& reply, const sdbus::Error* error) {
             Service* s = current(name, id);
             if (!s) return;
             if (error) {
                 if (error->getName() == "org.freedesktop.DBus.Error.UnknownMethod") legacy_scan(*s);
                 else scan_failed(name, id, error->getName() + ": " + error->getMessage());
                 return;
             }
             std::vector<std::pair<std::string, detail::BusItemEntry>> items;
             if (!detail::read_items(reply, items)) {
                 scan_failed(name, id, "GetItems replied with something else than a{sa{sv}}");
                 return;
             }
             for (auto& [path, entry] : items) update(*s, path, std::move(entry.first), std::move(entry.second), true);
             make_ready(*s);
         });
}

void Monitor::legacy_scan(Service& s) {
    // An old service without GetItems (§10.3): the whole tree with GetValue and
    // GetText on `/` (relative keys), then single paths somebody asked for.
    log_.debug("{} has no GetItems: reading it with GetValue", s.name);
    send(new_call(bus_, s.owner, "/", busitem, "GetValue"), call_timeout,
         [this, name = s.name, id = s.id](sdbus::MethodReply& reply, const sdbus::Error* error) {
             Service* s = current(name, id);
             if (!s) return;
             auto values = std::make_shared<Value::Dict>();
             if (!error) {
                 try {
                     sdbus::Variant v;
                     reply >> v;
                     Value all = from_variant(v);
                     if (all.is_dict()) *values = all.as_dict();
                 } catch (const std::exception&) {
                 }
             }
             send(new_call(bus_, s->owner, "/", busitem, "GetText"), call_timeout,
                  [this, name, id, values](sdbus::MethodReply& r, const sdbus::Error* e) {
                      Service* s = current(name, id);
                      if (!s) return;
                      Value texts;
                      if (!e) {
                          try {
                              sdbus::Variant v;
                              r >> v;
                              texts = from_variant(v);
                          } catch (const std::exception&) {
                          }
                      }
                      for (auto& [rel, value] : *values) {
                          std::optional<std::string> text;
                          if (texts.is_dict())
                              if (auto t = texts.as_dict().find(rel); t != texts.as_dict().end() && t->second.is_string())
                                  text = t->second.as_string();
                          update(*s, "/" + rel, value, std::move(text), true);
                      }
                      std::vector<std::string> missing;
                      for (auto& p : wanted_paths(name))
                          if (!s->items.count(p)) missing.push_back(p);
                      fetch_paths(*s, std::move(missing));
                  });
         });
}

void Monitor::fetch_paths(Service& s, std::vector<std::string> paths) {
    if (paths.empty()) {
        make_ready(s);
        return;
    }
    auto remaining = std::make_shared<std::size_t>(paths.size());
    for (auto& path : paths) {
        send(new_call(bus_, s.owner, path, busitem, "GetValue"), call_timeout,
             [this, name = s.name, id = s.id, path, remaining](sdbus::MethodReply& reply, const sdbus::Error* error) {
                 Service* s = current(name, id);
                 if (!s) return;
                 if (!error) {  // an error means the path is absent
                     try {
                         sdbus::Variant v;
                         reply >> v;
                         update(*s, path, from_variant(v), std::nullopt, true);
                     } catch (const std::exception&) {
                     }
                 }
                 if (--*remaining == 0) make_ready(*s);
             });
    }
}

void Monitor::scan_failed(const std::string& name, std::uint64_t id, const std::string& why) {
    if (!current(name, id)) return;
    log_.warning("cannot read {}: {}; ignoring it until it re-registers", name, why);
    remove(name, "could not be read");
}

void Monitor::make_ready(Service& s) {
    s.ready = true;
    auto si = info(s);
    log_.info("{} found ({} paths, device instance {})", s.name, s.items.size(),
              si.device_instance ? std::to_string(*si.device_instance) : "none");
    emit(Event{added_event, si, {}, {}});
    for (auto& [path, item] : s.items)
        if (item.effective().is_valid()) changed(s.name, path, item.effective());
    for (auto it = service_waiters_.begin(); it != service_waiters_.end();) {
        auto* w = *it++;
        if (pattern_matches(w->pattern_, s.name)) w->fire(si);
    }
}

std::vector<std::string> Monitor::wanted_paths(const std::string& service) const {
    std::set<std::string> paths{"/DeviceInstance"};
    for (auto& [id, e] : registry_->entries)
        if (e->kind == change_event && !e->path.empty() && pattern_matches(e->pattern, service)) paths.insert(e->path);
    for (auto* w : change_waiters_)
        if (w->service_ == service) paths.insert(w->path_);
    for (auto& [key, age] : max_ages_)
        if (key.first == service) paths.insert(key.second);
    return {paths.begin(), paths.end()};
}

// ---- following changes ---------------------------------------------------

void Monitor::on_properties_changed(sdbus::Message& msg) {
    auto [b, e] = by_owner_.equal_range(msg.getSender());
    if (b == e) return;  // not a service we follow (or not read yet)
    auto entry = detail::read_properties(msg);
    if (!entry) return;
    const std::string path = msg.getPath();
    for (auto it = b; it != e; ++it) update(*it->second, path, entry->first, entry->second, false);
}

void Monitor::on_items_changed(sdbus::Message& msg) {
    auto [b, e] = by_owner_.equal_range(msg.getSender());
    if (b == e) return;
    std::vector<std::pair<std::string, detail::BusItemEntry>> items;
    if (!detail::read_items(msg, items)) return;
    for (auto& [path, entry] : items)
        for (auto it = b; it != e; ++it) update(*it->second, path, entry.first, entry.second, false);
}

void Monitor::update(Service& s, const std::string& path, Value v, std::optional<std::string> txt, bool from_scan) {
    Item& item = s.items[path];
    // A signal that arrived while the scan was under way is newer than the scan (§10.6).
    if (from_scan && item.seen) return;
    const bool is_change = !(item.effective() == v);
    // An equal value (1 == 1.0 == true) keeps the cached one, as DbusMonitor
    // does, but still counts as an update for the value's age.
    if (is_change || item.stale || !item.seen) item.value = std::move(v);
    item.text = txt ? std::move(*txt) : moat::text(item.value);
    item.seen = true;
    item.stale = false;
    item.updated = bus_.loop().clock().now();
    arm_expiry(s, path, item);
    if (s.ready && is_change) changed(s.name, path, item.value);
}

void Monitor::arm_expiry(Service& s, const std::string& path, Item& item) {
    auto it = max_ages_.find(std::make_pair(s.name, path));
    if (it == max_ages_.end()) {
        item.expiry.reset();
        return;
    }
    item.expiry = Timer(bus_.loop().clock(), item.updated + it->second,
                        [this, name = s.name, id = s.id, path] { expire(name, id, path); });
}

void Monitor::expire(const std::string& name, std::uint64_t id, const std::string& path) {
    Service* s = current(name, id);
    if (!s) return;
    auto it = s->items.find(path);
    if (it == s->items.end() || it->second.stale) return;
    // A timer is never trusted to be on time: expire only what is really old.
    auto age = max_ages_.find(std::make_pair(name, path));
    if (age == max_ages_.end()) return;
    if (bus_.loop().clock().now() - it->second.updated < age->second) {
        arm_expiry(*s, path, it->second);
        return;
    }
    const bool was_valid = it->second.effective().is_valid();
    it->second.stale = true;
    if (was_valid) log_.debug("{}{} went stale", name, path);
    if (s->ready && was_valid) changed(name, path, Value());
}

void Monitor::changed(const std::string& service, const std::string& path, const Value& v) {
    for (auto it = change_waiters_.begin(); it != change_waiters_.end();) {
        auto* w = *it++;  // fire() unregisters w
        if (w->path_ == path && w->service_ == service) w->fire(v);
    }
    if (registry_->count[change_event]) emit(Event{change_event, ServiceInfo{service, {}, {}}, path, v});
}

// ---- observers -----------------------------------------------------------

void Monitor::emit(Event ev) {
    if (ev.kind != change_event && !registry_->count[ev.kind]) return;
    events_.push_back(std::move(ev));
    if (delivery_posted_) return;
    delivery_posted_ = true;
    bus_.loop().post([w = std::weak_ptr<bool>(alive_), this] {
        if (w.lock()) deliver();
    });
}

void Monitor::deliver() {
    delivery_posted_ = false;
    auto events = std::move(events_);
    events_.clear();
    auto registry = registry_;
    for (auto& ev : events) {
        std::vector<std::pair<std::uint64_t, std::shared_ptr<Subscription::Registry::Entry>>> targets;
        for (auto& [id, e] : registry->entries) {
            if (e->kind != ev.kind || !pattern_matches(e->pattern, ev.info.name)) continue;
            if (ev.kind == change_event && !e->path.empty() && e->path != ev.path) continue;
            targets.emplace_back(id, e);
        }
        for (auto& [id, e] : targets) {
            if (!registry->entries.count(id)) continue;  // an earlier callback unsubscribed it
            // Not swallowed: a plugin's observer that throws fails that plugin
            // instance, as its posted functions do (Loop::invoke).
            // `entry` and not `e` in the lambda: clang 14 (the fuzz build)
            // cannot capture a structured binding.
            bus_.loop().invoke(e->origin, "a monitor observer", [&, entry = e] {
                if (ev.kind == change_event) entry->change(ev.info.name, ev.path, ev.value);
                else entry->service(ev.info);
            });
        }
    }
}

std::uint64_t Monitor::subscribe(int kind, std::string pattern, std::string path, ChangeFn cfn, ServiceFn sfn) {
    watch(pattern);
    auto id = registry_->next++;
    registry_->entries.emplace(id, std::make_shared<Subscription::Registry::Entry>(Subscription::Registry::Entry{
                                       kind, std::move(pattern), std::move(path), std::move(cfn), std::move(sfn),
                                       bus_.loop().origin()}));
    ++registry_->count[kind];
    return id;
}

Subscription Monitor::on_change(std::string pattern, std::string path, ChangeFn fn) {
    return Subscription(registry_, subscribe(change_event, std::move(pattern), std::move(path), std::move(fn), {}));
}

Subscription Monitor::on_service_added(std::string pattern, ServiceFn fn) {
    return Subscription(registry_, subscribe(added_event, std::move(pattern), {}, {}, std::move(fn)));
}

Subscription Monitor::on_service_removed(std::string pattern, ServiceFn fn) {
    return Subscription(registry_, subscribe(removed_event, std::move(pattern), {}, {}, std::move(fn)));
}

// ---- reading -------------------------------------------------------------

ServiceInfo Monitor::info(const Service& s) const {
    ServiceInfo out{s.name, s.owner, std::nullopt};
    if (auto it = s.items.find("/DeviceInstance"); it != s.items.end())
        // Checked before the conversion: NaN, infinities and huge values from
        // the bus would make it undefined; they count as no instance.
        if (auto n = it->second.effective().as_number(); n && *n >= -9.2e18 && *n <= 9.2e18)
            out.device_instance = std::int64_t(*n);
    if (!out.device_instance) {
        auto cls = service_class(s.name);
        if (cls == "com.victronenergy.settings" || cls == "com.victronenergy.platform" ||
            cls == "com.victronenergy.vecan")
            out.device_instance = 0;
    }
    return out;
}

Value Monitor::value(std::string_view service, std::string_view path) {
    watch(service);
    Item* item = find(service, path);
    return item ? item->effective() : Value();
}

Value Monitor::value(std::string_view service, std::string_view path, Duration max_age) {
    watch(service);
    Item* item = find(service, path);
    if (!item || bus_.loop().clock().now() - item->updated > max_age) return Value();
    return item->effective();
}

std::string Monitor::text(std::string_view service, std::string_view path) {
    watch(service);
    Item* item = find(service, path);
    return item ? item->text : std::string();
}

bool Monitor::seen(std::string_view service, std::string_view path) {
    watch(service);
    return find(service, path) != nullptr;
}

std::optional<Duration> Monitor::age(std::string_view service, std::string_view path) {
    watch(service);
    Item* item = find(service, path);
    if (!item) return std::nullopt;
    return bus_.loop().clock().now() - item->updated;
}

void Monitor::set_max_age(std::string_view service, std::string_view path, std::optional<Duration> max_age) {
    watch(service);
    auto key = std::make_pair(std::string(service), std::string(path));
    if (max_age) max_ages_[key] = *max_age;
    else max_ages_.erase(key);
    if (auto it = services_.find(service); it != services_.end()) {
        auto& s = *it->second;
        if (auto item = s.items.find(key.second); item != s.items.end()) arm_expiry(s, key.second, item->second);
    }
}

std::vector<ServiceInfo> Monitor::services(std::string_view pattern) {
    watch(pattern);
    std::vector<ServiceInfo> out;
    for (auto& [name, s] : services_)
        if (s->ready && pattern_matches(pattern, name)) out.push_back(info(*s));
    return out;
}

std::optional<ServiceInfo> Monitor::service(std::string_view name) {
    watch(name);
    Service* s = find(name);
    if (!s) return std::nullopt;
    return info(*s);
}

std::optional<ServiceInfo> Monitor::find_by_instance(std::string_view pattern, std::int64_t instance) {
    for (auto& s : services(pattern))
        if (s.device_instance == instance) return s;
    return std::nullopt;
}

// ---- waiting -------------------------------------------------------------

Monitor::ChangeWait Monitor::wait_for_change(std::string service, std::string path, std::optional<Duration> timeout) {
    watch(service);
    return ChangeWait(*this, std::move(service), std::move(path), timeout);
}

Monitor::ServiceWait Monitor::wait_for_service(std::string pattern, std::optional<Duration> timeout) {
    watch(pattern);
    return ServiceWait(*this, std::move(pattern), timeout);
}

Monitor::ChangeWait::ChangeWait(Monitor& m, std::string service, std::string path, std::optional<Duration> timeout)
    : monitor_(&m), service_(std::move(service)), path_(std::move(path)), timeout_(timeout) {
    monitor_->change_waiters_.push_back(this);
    registered_ = true;
    Clock& clock = monitor_->bus_.loop().clock();
    if (timeout_) timer_ = Timer(clock, clock.now() + *timeout_, [this] { fire(std::nullopt); });
}

void Monitor::ChangeWait::start() {
    if (!monitor_ || fired_) complete();
}

void Monitor::ChangeWait::abort() {
    unregister();
    timer_.reset();
}

void Monitor::ChangeWait::unregister() {
    if (registered_ && monitor_) monitor_->change_waiters_.remove(this);
    registered_ = false;
}

void Monitor::ChangeWait::fire(std::optional<Value> v) {
    if (fired_) return;
    fired_ = true;
    result_ = std::move(v);
    unregister();
    timer_.reset();
    complete();
}

void Monitor::ServiceWait::start() {
    if (!monitor_) {
        complete();
        return;
    }
    for (auto& [name, s] : monitor_->services_)
        if (s->ready && pattern_matches(pattern_, name)) {
            result_ = monitor_->info(*s);
            complete();
            return;
        }
    monitor_->service_waiters_.push_back(this);
    registered_ = true;
    if (timeout_) timer_ = Timer(loop().clock(), loop().clock().now() + *timeout_, [this] { fire(std::nullopt); });
}

void Monitor::ServiceWait::abort() {
    unregister();
    timer_.reset();
}

void Monitor::ServiceWait::unregister() {
    if (registered_ && monitor_) monitor_->service_waiters_.remove(this);
    registered_ = false;
}

void Monitor::ServiceWait::fire(std::optional<ServiceInfo> s) {
    result_ = std::move(s);
    unregister();
    timer_.reset();
    complete();
}

Task<std::optional<Value>> Monitor::wait_for_value(std::string service, std::string path, Duration timeout) {
    Clock& clock = bus_.loop().clock();
    const TimePoint deadline = clock.now() + timeout;
    for (;;) {
        Value v = value(service, path);
        if (v.is_valid()) co_return v;
        const TimePoint now = clock.now();
        if (now >= deadline) co_return std::nullopt;
        auto wait = wait_for_change(service, path, deadline - now);
        std::optional<Value> next = co_await wait;
        if (!next) co_return std::nullopt;
        if (next->is_valid()) co_return next;
    }
}

// ---- writing -------------------------------------------------------------

Task<int> Monitor::set_value(std::string service, std::string path, Value value, Duration timeout) {
    watch(service);
    Service* s = find(service);
    if (!s || !s->items.count(path)) co_return -1;
    BusCall call = new_call(bus_, s->owner, path, busitem, "SetValue");
    call.msg << to_variant(value);
    int result = -1;
    try {
        auto reply = co_await BusCallAwaitable(std::move(call), timeout);
        std::int32_t r = -1;
        reply >> r;
        result = r;
    } catch (const DBusError& e) {
        log_.debug("SetValue {} on {}: {}", path, service, e.message());
    } catch (const sdbus::Error& e) {
        log_.debug("SetValue {} on {}: {}", path, service, e.getMessage());
    }
    co_return result;
}

} // namespace moat
