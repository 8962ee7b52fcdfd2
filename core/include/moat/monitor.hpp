// Following other Venus services: the import side of the Venus D-Bus layer
// (the consumer side, as Victron's DbusMonitor and aiovelib do it).
//
// One Monitor per process, on the host's shared connection, used by every
// plugin (Context::monitor). It follows the service classes that some plugin
// named (`watch("com.victronenergy.battery")`, or any call below that names a
// service or class), keeps a cache of every path of those services and tells
// observers and waiting tasks about changes:
//
// - Discovery: NameOwnerChanged is subscribed first, then ListNames.
//   Each service is read with GetItems; an old service without it (error
//   UnknownMethod) with GetValue/GetText on `/`, then GetValue per path for the
//   paths somebody observes. A value a signal brought while the scan was
//   under way is newer than the scan's and is kept.
// - Changes: ItemsChanged and PropertiesChanged, through three match rules for
//   the whole process (NameOwnerChanged, ItemsChanged, PropertiesChanged), never
//   one per service or path: the daemon allows 1,024 per connection and all
//   plugins share it. A value equal to the cached one (Python equality, see value.hpp)
//   is not a change, but it still counts as an update for the value's age.
// - Departure: when a service's name goes (also when its process is killed and
//   its connection just closes), every cached value of it becomes invalid,
//   observers of each path see invalid, and "removed" observers are told. A
//   service that comes back is read again and announced again.
// - Age: value(service, path, max_age) returns invalid for a value older than
//   max_age; set_max_age() makes a path go invalid (observers notified) when no
//   update came within that time, for control loops that need fresh inputs.
//
// Nothing happens on the bus until the first call that names a service or a
// class: a process whose plugins never read other services pays nothing.
// Starting adds the three match rules; sdbus-c++ 1.2.0 only has a synchronous
// addMatch (one round trip to the daemon each, once per process). Everything
// else is asynchronous.
//
// Patterns: "com.victronenergy.battery" matches that name and every name below
// it ("com.victronenergy.battery.ttyO1"); a full service name matches itself.
// Only names in the com.victronenergy namespace are followed.
//
// Callbacks run on a later loop turn than the D-Bus message that caused them
// (never inside sd-bus dispatch), in the order of the events; an exception
// from a callback does not reach the monitor or the other callbacks: it goes
// to whoever subscribed (a plugin instance fails, see LoopOwner in loop.hpp).
#pragma once

#include "moat/export.hpp"

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "moat/bus.hpp"
#include "moat/log.hpp"
#include "moat/task.hpp"
#include "moat/value.hpp"

namespace moat {

struct BusCall;  // lib/bus_call.hpp

/// A followed service, as it is when asked.
struct MOAT_API ServiceInfo {
    std::string name;   ///< "com.victronenergy.battery.ttyO1"
    std::string owner;  ///< unique name of its connection (":1.42")
    /// Its /DeviceInstance; 0 for settings, platform and vecan services
    /// without one (as DbusMonitor); nullopt when missing or invalid.
    std::optional<std::int64_t> device_instance;
};

/// "com.victronenergy.battery.ttyO1" → "com.victronenergy.battery".
MOAT_API std::string service_class(std::string_view service);
/// True when `service` is `pattern` or lies below it (see the file comment).
MOAT_API bool pattern_matches(std::string_view pattern, std::string_view service);

class Monitor;

/// Keeps an observer registered; unregisters it when destroyed or reset.
/// May outlive the Monitor.
class MOAT_API Subscription {
public:
    Subscription() = default;
    Subscription(Subscription&&) noexcept = default;
    Subscription& operator=(Subscription&& o) noexcept;
    ~Subscription() { reset(); }
    void reset();
    explicit operator bool() const { return !registry_.expired(); }

private:
    friend class Monitor;
    struct Registry;
    Subscription(std::weak_ptr<Registry> r, std::uint64_t id) : registry_(std::move(r)), id_(id) {}
    std::weak_ptr<Registry> registry_;
    std::uint64_t id_ = 0;
};

class MOAT_API Monitor {
public:
    /// Timeout of the monitor's own calls (GetItems, GetValue, ...) and the default for set_value.
    static constexpr Duration call_timeout = std::chrono::seconds(10);

    using ChangeFn = std::function<void(const std::string& service, const std::string& path, const Value& value)>;
    using ServiceFn = std::function<void(const ServiceInfo&)>;

    Monitor(Bus& bus, Logger log);
    ~Monitor();
    Monitor(const Monitor&) = delete;
    Monitor& operator=(const Monitor&) = delete;

    // ---- following -------------------------------------------------------

    /// Follow every service matching `pattern` (idempotent; the first call
    /// starts the monitor). Throws std::invalid_argument for a pattern outside
    /// com.victronenergy. Every call below that takes a service or pattern
    /// calls it.
    void watch(std::string_view pattern);

    // ---- reading the cache -------------------------------------------------

    /// The cached value; invalid when the service or path is unknown, the
    /// service is gone, or the value went stale (set_max_age).
    Value value(std::string_view service, std::string_view path);
    /// Like value(), but also invalid when the last update is older than `max_age`.
    Value value(std::string_view service, std::string_view path, Duration max_age);
    /// The text the service gave with the value ("" when unknown). Never compare it to "---".
    std::string text(std::string_view service, std::string_view path);
    /// True when the path is present in the service now (from its scan or a signal).
    bool seen(std::string_view service, std::string_view path);
    /// Time since the path's last update (a signal, even with an equal value, or the scan).
    std::optional<Duration> age(std::string_view service, std::string_view path);
    /// From now on the path goes invalid (and observers see invalid) when it was
    /// not updated for `max_age`; nullopt ends that. Kept across service restarts.
    void set_max_age(std::string_view service, std::string_view path, std::optional<Duration> max_age);

    // ---- services --------------------------------------------------------

    /// The followed services matching `pattern` that have been read completely, by name.
    std::vector<ServiceInfo> services(std::string_view pattern);
    /// One followed, completely read service.
    std::optional<ServiceInfo> service(std::string_view name);
    /// The service matching `pattern` whose /DeviceInstance is `instance`.
    std::optional<ServiceInfo> find_by_instance(std::string_view pattern, std::int64_t instance);

    // ---- waiting (from a task; cancellable; a cancelled wait leaves nothing behind) ----

    /// Awaitable of wait_for_change(): yields the new value (invalid when the
    /// path went invalid, its service vanished or the value went stale), or
    /// nullopt when the timeout passed first.
    class [[nodiscard]] ChangeWait final : public Suspension {
    public:
        /// Registered here, not when awaited: a change in between is not lost.
        ChangeWait(Monitor& m, std::string service, std::string path, std::optional<Duration> timeout);
        ~ChangeWait() { unregister(); }
        ChangeWait(const ChangeWait&) = delete;
        ChangeWait& operator=(const ChangeWait&) = delete;
        std::optional<Value> await_resume() {
            Suspension::await_resume();
            return std::move(result_);
        }

    private:
        friend class Monitor;
        void start() override;
        void abort() override;
        void unregister();
        void fire(std::optional<Value> v);
        Monitor* monitor_;
        std::string service_, path_;
        std::optional<Duration> timeout_;
        Timer timer_;
        std::optional<Value> result_;
        bool registered_ = false;
        bool fired_ = false;  ///< a change (or the timeout) came, maybe before the await
    };

    /// Awaitable of wait_for_service(): yields the service (at once when one
    /// is already there), or nullopt when the timeout passed first.
    class [[nodiscard]] ServiceWait final : public Suspension {
    public:
        ServiceWait(Monitor& m, std::string pattern, std::optional<Duration> timeout)
            : monitor_(&m), pattern_(std::move(pattern)), timeout_(timeout) {}
        ~ServiceWait() { unregister(); }
        ServiceWait(const ServiceWait&) = delete;
        ServiceWait& operator=(const ServiceWait&) = delete;
        std::optional<ServiceInfo> await_resume() {
            Suspension::await_resume();
            return std::move(result_);
        }

    private:
        friend class Monitor;
        void start() override;
        void abort() override;
        void unregister();
        void fire(std::optional<ServiceInfo> s);
        Monitor* monitor_;
        std::string pattern_;
        std::optional<Duration> timeout_;
        Timer timer_;
        std::optional<ServiceInfo> result_;
        bool registered_ = false;
    };

    /// `auto v = co_await monitor.wait_for_change(service, path, 5s);`
    /// Waits for the next change of the path after this call (a change before
    /// the co_await counts; the timeout runs from this call).
    ChangeWait wait_for_change(std::string service, std::string path, std::optional<Duration> timeout = {});
    /// `auto s = co_await monitor.wait_for_service("com.victronenergy.battery", 30s);`
    ServiceWait wait_for_service(std::string pattern, std::optional<Duration> timeout = {});
    /// The current value when valid, else the next valid one; nullopt after `timeout`.
    Task<std::optional<Value>> wait_for_value(std::string service, std::string path, Duration timeout);

    // ---- writing ---------------------------------------------------------

    /// SetValue on the service's path; yields its result (0 accepted or
    /// unchanged, 1 not writeable or wrong type, 2 refused by the service; localsettings:
    /// -1), or -1 when the service or path is not known to the monitor or the
    /// call failed (error reply, timeout), as DbusMonitor and aiovelib do.
    Task<int> set_value(std::string service, std::string path, Value value, Duration timeout = call_timeout);

    // ---- observers (for code that is not a task) ----------------------------

    /// `fn(service, path, value)` for every change of `path` in services matching
    /// `pattern` (every path when `path` is empty), including the values of a
    /// service that was just read (as changes from invalid) and the invalid
    /// values of one that vanished.
    [[nodiscard]] Subscription on_change(std::string pattern, std::string path, ChangeFn fn);
    /// `fn(info)` when a service matching `pattern` was read completely. Not
    /// called for services that are already there (see services()).
    [[nodiscard]] Subscription on_service_added(std::string pattern, ServiceFn fn);
    /// `fn(info)` when a read service matching `pattern` left the bus.
    [[nodiscard]] Subscription on_service_removed(std::string pattern, ServiceFn fn);

    // ---- diagnostics -------------------------------------------------------

    bool started() const { return started_; }
    /// Match rules this monitor holds on the connection (3 once started, else 0).
    std::size_t match_rules() const { return slots_.size(); }
    /// Tasks waiting in wait_for_change/wait_for_service (for tests: a cancelled wait leaves 0).
    std::size_t waiting() const { return change_waiters_.size() + service_waiters_.size(); }
    /// Services being read or followed, complete or not.
    std::size_t known_services() const { return services_.size(); }
    /// D-Bus calls of the monitor under way.
    std::size_t calls_in_flight() const;

private:
    struct Item;
    struct Service;
    struct Event;
    using ReplyFn = std::function<void(sdbus::MethodReply&, const sdbus::Error*)>;

    void start();
    void list_names(std::string pattern);
    void send(BusCall call, Duration timeout, ReplyFn fn);
    void sweep_calls();
    bool followed(std::string_view name) const;

    void on_name_owner_changed(sdbus::Message& msg);
    void on_items_changed(sdbus::Message& msg);
    void on_properties_changed(sdbus::Message& msg);

    void appear(const std::string& name, const std::string& owner, bool from_listing);
    void vanish(const std::string& name, const std::string& old_owner);
    void remove(const std::string& name, const char* why);
    void scan(Service& s);
    void legacy_scan(Service& s);
    void fetch_paths(Service& s, std::vector<std::string> paths);
    void scan_failed(const std::string& name, std::uint64_t id, const std::string& why);
    void make_ready(Service& s);
    Service* current(const std::string& name, std::uint64_t id);
    Service* find(std::string_view name);
    Item* find(std::string_view service, std::string_view path);

    void update(Service& s, const std::string& path, Value v, std::optional<std::string> text, bool from_scan);
    void arm_expiry(Service& s, const std::string& path, Item& item);
    void expire(const std::string& name, std::uint64_t id, const std::string& path);
    void changed(const std::string& service, const std::string& path, const Value& v);
    void emit(Event ev);
    void deliver();
    ServiceInfo info(const Service& s) const;
    std::vector<std::string> wanted_paths(const std::string& service) const;
    std::uint64_t subscribe(int kind, std::string pattern, std::string path, ChangeFn cfn, ServiceFn sfn);

    Bus& bus_;
    Logger log_;
    bool started_ = false;
    std::vector<std::string> patterns_;
    std::vector<std::unique_ptr<void, std::function<void(void*)>>> slots_;  ///< sdbus::Slot
    std::map<std::string, std::unique_ptr<Service>, std::less<>> services_;
    std::multimap<std::string, Service*, std::less<>> by_owner_;
    std::uint64_t next_id_ = 1;
    std::map<std::pair<std::string, std::string>, Duration, std::less<>> max_ages_;

    struct PendingCall;
    std::list<PendingCall> calls_;

    std::list<ChangeWait*> change_waiters_;
    std::list<ServiceWait*> service_waiters_;
    std::shared_ptr<Subscription::Registry> registry_;
    std::vector<Event> events_;
    bool delivery_posted_ = false;
    std::shared_ptr<bool> alive_;
};

} // namespace moat
