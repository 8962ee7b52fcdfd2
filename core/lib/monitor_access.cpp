// The Monitor as a plugin uses it: observers (delivered from the loop, each
// under its subscriber's origin), reading the cached values, waiting for a
// change or a service, and SetValue. The discovery and the cache's upkeep are
// in monitor.cpp.
#include "monitor_internal.hpp"
#include "bus_call.hpp"

#include <algorithm>

namespace moat {

using namespace monitor_detail;

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
    auto call = busitem_set_value(bus_, s->owner, path, std::move(value), timeout);
    SetValueResult r = co_await call;
    if (!r.error.empty()) log_.debug("SetValue {} on {}: {}", path, service, r.error);
    co_return r.code;
}

} // namespace moat
