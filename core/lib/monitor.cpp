#include "monitor_internal.hpp"
#include "bus_call.hpp"
#include "busitem_read.hpp"
#include "value_dbus.hpp"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

namespace moat {

using namespace monitor_detail;

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

// ---- lifetime ------------------------------------------------------------

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

} // namespace moat
