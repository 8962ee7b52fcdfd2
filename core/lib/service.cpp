// A Venus service on D-Bus: items, nodes, root, signals, name (venus-dbus.md §3-§8).
#include "moat/service.hpp"

#include <set>

#include <algorithm>
#include <tuple>

#include "bus_call.hpp"
#include "sdbus_access.hpp"
#include "value_dbus.hpp"

namespace moat {

namespace {

constexpr const char* error_unknown_object = "org.freedesktop.DBus.Error.UnknownObject";
constexpr const char* error_unknown_method = "org.freedesktop.DBus.Error.UnknownMethod";
constexpr const char* error_invalid_args = "org.freedesktop.DBus.Error.InvalidArgs";
constexpr const char* error_failed = "org.freedesktop.DBus.Error.Failed";

using Entry = std::map<std::string, sdbus::Variant>;
using Entries = std::map<std::string, Entry>;

/// Every proper prefix of `path` except `/`: "/a/b/c" → "/a", "/a/b".
std::vector<std::string> prefixes_of(const std::string& path) {
    std::vector<std::string> out;
    for (std::size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1))
        out.push_back(path.substr(0, pos));
    return out;
}

bool valid_object_path(const std::string& p) {
    if (p.size() < 2 || p.front() != '/' || p.back() == '/') return false;
    char prev = 0;
    for (char c : p) {
        if (c == '/') {
            if (prev == '/') return false;
        } else if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
        prev = c;
    }
    return true;
}

/// The item paths below `node` ("/" or a node path) in a sorted map: the
/// range [node + "/", node + "0") since '0' follows '/'.
template <class Map>
auto below(Map& items, const std::string& node) {
    if (node == "/") return std::make_pair(items.begin(), items.end());
    return std::make_pair(items.lower_bound(node + "/"), items.lower_bound(node + "0"));
}

void send_error(sdbus::MethodCall& call, const sdbus::Error& e) {
    if (call.doesntExpectReply()) return;
    call.createErrorReply(e).send();
}

} // namespace

// ---------------------------------------------------------------------------
// errors

NameTakenError::NameTakenError(std::string name, std::string owner)
    : std::runtime_error(fmt::format("the D-Bus name {} is already owned by {}", name, owner)),
      name_(std::move(name)), owner_(std::move(owner)) {}

ItemNotFound::ItemNotFound(std::string service, std::string path)
    : std::out_of_range(fmt::format("{} has no item {}", service, path)),
      service_(std::move(service)), path_(std::move(path)) {}

// ---------------------------------------------------------------------------
// awaitable writes

struct Item::Waiters {
    Event event;
    std::uint64_t writes = 0;
    Value last;
    bool removed = false;
    /// Reasons a remote write was refused that were logged at info already:
    /// once per item and reason, so that a client retrying every second does
    /// not flood the log.
    std::set<std::string, std::less<>> refusals_logged;
};

struct WriteStream::State {
    std::deque<Write> queue;
    Event event;
    bool closed = false;
};

namespace {

/// `seen`: the count when written() was called (the task starts later).
Task<Value> wait_written(std::shared_ptr<Item::Waiters> w, std::string path, std::uint64_t seen) {
    while (w->writes == seen) {
        if (w->removed) throw ItemRemoved(fmt::format("item {} was removed", path));
        w->event.clear();
        co_await w->event.wait();
    }
    co_return w->last;
}

Task<Write> next_write(std::shared_ptr<WriteStream::State> s) {
    while (s->queue.empty()) {
        if (s->closed) throw ItemRemoved("the service was destroyed");
        s->event.clear();
        co_await s->event.wait();
    }
    Write w = std::move(s->queue.front());
    s->queue.pop_front();
    co_return w;
}

} // namespace

WriteStream::~WriteStream() = default;
Task<Write> WriteStream::next() { return next_write(state_); }
std::size_t WriteStream::pending() const { return state_ ? state_->queue.size() : 0; }

// ---------------------------------------------------------------------------
// Item

ItemOptions& ItemOptions::text(std::string_view printf_format) { return text(format::printf(printf_format)); }

Item::Item(Service& service, std::string path, Value value, ItemOptions options)
    : service_(&service), path_(std::move(path)), value_(std::move(value)), options_(std::move(options)),
      waiters_(std::make_shared<Waiters>()) {}

Item::~Item() {
    waiters_->removed = true;
    waiters_->event.set();
}

std::string Item::text() const {
    if (value_.is_invalid()) return "---";
    if (options_.text()) {
        try {
            return options_.text()(value_);
        } catch (const std::exception& e) {
            service_->log_.warning("text formatter of {} failed on {:r}: {}", path_, value_, e.what());
            return moat::text(value_);
        }
    }
    if (path_ == "/ProductId" && value_.is_int()) return format::hex()(value_);
    return moat::text(value_);
}

void Item::set(Value v) {
    if (v == value_) return;  // §2.3: nothing, and the stored type stays
    value_ = std::move(v);
    service_->changed(*this);
}

void Item::reset() {
    if (!options_.default_value()) throw std::logic_error("item " + path_ + " has no default value");
    set(*options_.default_value());
}

Task<Value> Item::written() { return wait_written(waiters_, path_, waiters_->writes); }

void Item::set_options(ItemOptions options) {
    auto methods = [this](const ItemOptions& o) {
        auto has = [&](const char* name, bool given) { return given && !service_->overridden(Service::Kind::item, busitem_interface, name); };
        return std::make_tuple(has("GetMin", bool(o.min())), has("GetMax", bool(o.max())),
                               has("GetDefault", bool(o.default_value())));
    };
    const bool same_methods = methods(options_) == methods(options);
    options_ = std::move(options);
    // The object lists GetMin/GetMax/GetDefault by the options: make it again
    // when that set changed (not while a call on it is being answered).
    if (!same_methods && object_ && service_->dispatching_ != path_) {
        object_.reset();
        service_->create_item_object(*this);
    }
}

void Item::announce(const Value::Dict& entries) {
    std::map<std::string, sdbus::Variant> body;
    for (const auto& [k, v] : entries) body.emplace(k, to_variant(v));
    auto signal = object_->createSignal(busitem_interface, "PropertiesChanged");
    signal << body;
    object_->emitSignal(signal);
}

// ---------------------------------------------------------------------------
// the filter for calls sdbus-c++ cannot route

struct Service::Filter {
    Service* service = nullptr;
    detail::SlotGuard slot;
    sdbus::Signal like;  ///< a message of our connection, for adopt_call()

    static int on_message(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept {
        auto* self = static_cast<Filter*>(userdata);
        try {
            if (!sd_bus_message_is_method_call(m, nullptr, nullptr)) return 0;
            const char* path = sd_bus_message_get_path(m);
            const char* iface = sd_bus_message_get_interface(m);
            const char* member = sd_bus_message_get_member(m);
            if (!path || !member) return 0;
            Kind kind;
            std::string p(path);
            if (!self->service->is_our_path(p, &kind)) return 0;  // sd-bus answers UnknownObject
            const std::string_view sig = sd_bus_message_get_signature(m, 1);
            bool ours;
            if (!iface) ours = true;  // velib answers calls without an interface
            else if (std::string_view(iface) == busitem_interface && std::string_view(member) == "SetValue")
                ours = sig != "v";  // bare value, wrong count
            else if (const auto* extra = self->service->extra_method(kind, member, iface))
                // Plain types where the method declares variants (dbus-python without
                // introspection): sdbus-c++ would refuse them; the handler reads any form.
                ours = sig != extra->in_signature;
            else ours = false;
            if (!ours) return 0;
            sdbus::MethodCall call = detail::adopt_call(m, self->like);
            self->service->dispatch(p, call);
            return 1;
        } catch (...) {
            return 0;
        }
    }
};

// ---------------------------------------------------------------------------
// Service

Service::Service(Loop& loop, std::string name, const std::string& bus_spec, Logger log)
    : loop_(loop), name_(std::move(name)), log_(std::move(log)) {
    bus_ = Bus::open(loop_, bus_spec, log_);
    create_root_object();
    filter_ = std::make_unique<Filter>();
    filter_->service = this;
    filter_->like = root_->createSignal(busitem_interface, "ItemsChanged");
    sd_bus_message* raw = detail::raw_message(filter_->like);
    sd_bus_slot* slot = nullptr;
    int r = sd_bus_add_filter(sd_bus_message_get_bus(raw), &slot, &Filter::on_message, filter_.get());
    if (r < 0) throw BusError(fmt::format("cannot install the D-Bus filter for {}: error {}", name_, -r));
    filter_->slot.reset(slot);
}

Service::~Service() {
    for (auto& weak : streams_)
        if (auto s = weak.lock()) {
            s->closed = true;
            s->event.set();
        }
    filter_.reset();
    items_.clear();
    nodes_.clear();
    root_.reset();
    bus_.reset();  // closes the connection: the bus daemon releases the name
}

bool Service::overridden(Kind kind, const char* interface, const char* name) const {
    return std::any_of(methods_.begin(), methods_.end(), [&](const ExtraMethod& m) {
        return (m.kinds & bit(kind)) && m.interface == interface && m.name == name;
    });
}

const Service::ExtraMethod* Service::extra_method(Kind kind, const std::string& name, const char* interface) const {
    const ExtraMethod* by_name = nullptr;
    for (const auto& m : methods_) {
        if (!(m.kinds & bit(kind)) || m.name != name) continue;
        if (interface && m.interface == interface) return &m;
        if (!by_name) by_name = &m;
    }
    // A call without an interface field finds the method by its name alone.
    return interface ? nullptr : by_name;
}

void Service::register_extras(sdbus::IObject& obj, Kind kind, const std::string& path) {
    for (const auto& m : methods_)
        if (m.kinds & bit(kind))
            obj.registerMethod(m.interface, m.name, m.in_signature, m.out_signature,
                               [this, path](sdbus::MethodCall call) { dispatch(path, call); });
}

void Service::add_method(unsigned kinds, std::string interface, std::string name, std::string in_signature,
                         std::string out_signature, MethodHandler handler) {
    if (!items_.empty() || !nodes_.empty())
        throw std::logic_error(fmt::format("{}: add_method({}) after items or nodes exist", name_, name));
    methods_.push_back(ExtraMethod{kinds, std::move(interface), std::move(name), std::move(in_signature),
                                   std::move(out_signature), std::move(handler)});
    if (kinds & on_root) {
        root_.reset();
        create_root_object();
    }
}

void Service::create_root_object() {
    root_ = sdbus::createObject(detail::connection(*bus_), "/");
    auto handler = [this](sdbus::MethodCall call) { dispatch("/", call); };
    for (auto [name, out] : {std::pair{"GetValue", "v"}, {"GetText", "v"}, {"GetItems", "a{sa{sv}}"}})
        if (!overridden(Kind::root, busitem_interface, name)) root_->registerMethod(busitem_interface, name, "", out, handler);
    register_extras(*root_, Kind::root, "/");
    root_->registerSignal(busitem_interface, "ItemsChanged", "a{sa{sv}}");
    root_->finishRegistration();
}

void Service::create_node_object(const std::string& path, Node& node) {
    node.object = sdbus::createObject(detail::connection(*bus_), path);
    auto handler = [this, path](sdbus::MethodCall call) { dispatch(path, call); };
    for (const char* name : {"GetValue", "GetText"})
        if (!overridden(Kind::node, busitem_interface, name)) node.object->registerMethod(busitem_interface, name, "", "v", handler);
    register_extras(*node.object, Kind::node, path);
    node.object->finishRegistration();
}

void Service::create_item_object(Item& item) {
    auto obj = sdbus::createObject(detail::connection(*bus_), item.path_);
    auto handler = [this, path = item.path_](sdbus::MethodCall call) { dispatch(path, call); };
    auto builtin = [&](const char* name, const char* in, const char* out, bool wanted = true) {
        if (wanted && !overridden(Kind::item, busitem_interface, name)) obj->registerMethod(busitem_interface, name, in, out, handler);
    };
    builtin("GetValue", "", "v");
    builtin("GetText", "", "s");
    builtin("SetValue", "v", "i");
    builtin("GetDescription", "si", "s");
    builtin("GetMin", "", "v", bool(item.options_.min()));
    builtin("GetMax", "", "v", bool(item.options_.max()));
    builtin("GetDefault", "", "v", bool(item.options_.default_value()));
    register_extras(*obj, Kind::item, item.path_);
    obj->registerSignal(busitem_interface, "PropertiesChanged", "a{sv}");
    obj->finishRegistration();
    item.object_ = std::move(obj);
}

void Service::pin_node(const std::string& path) {
    if (!valid_object_path(path)) throw std::invalid_argument(fmt::format("{}: \"{}\" is not a valid node path", name_, path));
    if (items_.count(path)) throw std::invalid_argument(fmt::format("{}: {} is an item, not a node", name_, path));
    for (const auto& p : prefixes_of(path))
        if (items_.count(p)) throw std::invalid_argument(fmt::format("{}: {} is an item and cannot have {} below it", name_, p, path));
    auto all = prefixes_of(path);
    all.push_back(path);
    for (const auto& p : all) {
        Node& node = nodes_[p];
        if (node.items++ == 0) create_node_object(p, node);  // never drops to 0 again
    }
}

void Service::check_new_path(const std::string& path) const {
    if (!valid_object_path(path))
        throw std::invalid_argument(fmt::format("{}: \"{}\" is not a valid item path", name_, path));
    if (items_.count(path)) throw std::invalid_argument(fmt::format("{}: item {} exists already", name_, path));
    if (nodes_.count(path))
        throw std::invalid_argument(fmt::format("{}: {} has items below it and cannot be an item too", name_, path));
    for (const auto& p : prefixes_of(path))
        if (items_.count(p))
            throw std::invalid_argument(fmt::format("{}: {} is an item and cannot have {} below it", name_, p, path));
}

Item& Service::add(const std::string& path, Value value, ItemOptions options) {
    // An item deleted earlier in this batch and added again: the old one goes now.
    if (auto it = items_.find(path); it != items_.end() && it->second->removing_) erase_item(path);
    check_new_path(path);
    auto item = std::unique_ptr<Item>(new Item(*this, path, std::move(value), std::move(options)));
    create_item_object(*item);
    for (const auto& p : prefixes_of(path)) {
        Node& node = nodes_[p];
        if (node.items++ == 0) create_node_object(p, node);
    }
    Item& ref = *item;
    items_.emplace(path, std::move(item));
    if (in_batch()) batch_changed_.insert(path);  // velib announces additions only inside a batch
    return ref;
}

void Service::add_mandatory(const DeviceInfo& info) {
    add("/Mgmt/ProcessName", info.process_name);
    add("/Mgmt/ProcessVersion", info.process_version);
    add("/Mgmt/Connection", info.connection);
    add("/DeviceInstance", info.device_instance);
    add("/ProductId", info.product_id);
    add("/ProductName", info.product_name);
    add("/FirmwareVersion", info.firmware_version);
    add("/HardwareVersion", info.hardware_version);
    add("/Connected", info.connected);
}

void Service::erase_item(const std::string& path) {
    auto it = items_.find(path);
    if (it == items_.end()) return;
    std::unique_ptr<Item> item = std::move(it->second);
    items_.erase(it);
    for (const auto& p : prefixes_of(path)) {
        auto n = nodes_.find(p);
        if (n != nodes_.end() && --n->second.items == 0) {
            if (dispatching_ == p) graveyard_.push_back(std::move(n->second.object));
            nodes_.erase(n);
        }
    }
    batch_changed_.erase(path);
    if (dispatching_ == path || dispatch_depth_ > 0) {
        // A handler on the stack may still use it; it goes when dispatch() returns.
        if (dispatching_ == path) graveyard_.push_back(std::move(item->object_));
        else item->object_.reset();
        dead_items_.push_back(std::move(item));
    }
}

void Service::remove(const std::string& path) {
    Item& item = at(path);
    if (in_batch()) {
        if (item.removing_) return;
        item.removing_ = true;
        if (item.value_.is_valid()) {
            item.value_ = Value();
            batch_changed_.insert(path);
        }
        batch_removed_.push_back(path);
        return;
    }
    erase_item(path);  // velib: gone without a signal
}

std::size_t Service::remove_tree(const std::string& prefix) {
    std::vector<std::string> doomed;
    if (items_.count(prefix)) doomed.push_back(prefix);
    auto [b, e] = below(items_, prefix);
    for (auto it = b; it != e; ++it)
        if (!it->second->removing_) doomed.push_back(it->first);
    for (const auto& p : doomed) remove(p);
    return doomed.size();
}

Item* Service::find(const std::string& path) {
    auto it = items_.find(path);
    return it == items_.end() || it->second->removing_ ? nullptr : it->second.get();
}

Item& Service::at(const std::string& path) {
    if (auto* item = find(path)) return *item;
    throw ItemNotFound(name_, path);
}

std::vector<std::string> Service::paths() const {
    std::vector<std::string> out;
    out.reserve(items_.size());
    for (const auto& [p, item] : items_)
        if (!item->removing_) out.push_back(p);
    return out;
}

// --- signals and batches ---

Entry Service::entry_of(const Item& item, bool extras) const {
    Entry e{{"Value", to_variant(item.value_)}, {"Text", sdbus::Variant(item.text())}};
    if (extras) {
        if (item.options_.min()) e.emplace("Min", to_variant(*item.options_.min()));
        if (item.options_.max()) e.emplace("Max", to_variant(*item.options_.max()));
        if (item.options_.default_value()) e.emplace("Default", to_variant(*item.options_.default_value()));
    }
    return e;
}

void Service::emit_properties_changed(Item& item) {
    auto signal = item.object_->createSignal(busitem_interface, "PropertiesChanged");
    signal << entry_of(item, false);
    item.object_->emitSignal(signal);
}

void Service::changed(Item& item) {
    if (in_batch()) batch_changed_.insert(item.path_);
    else emit_properties_changed(item);
}

Service::Batch::Batch(Service& s) : service_(&s) { ++s.batch_depth_; }

Service::Batch::~Batch() {
    if (!service_) return;
    try {
        service_->end_batch();
    } catch (const std::exception& e) {
        service_->log_.error("{}: ending a batch failed: {}", service_->name_, e.what());
    }
}

void Service::end_batch() {
    if (--batch_depth_ > 0) return;
    flush_batch();
}

void Service::flush_batch() {
    Entries changes;
    for (const auto& p : batch_changed_)
        if (auto it = items_.find(p); it != items_.end()) changes.emplace(p, entry_of(*it->second, false));
    batch_changed_.clear();
    if (!changes.empty()) {
        auto signal = root_->createSignal(busitem_interface, "ItemsChanged");
        signal << changes;
        root_->emitSignal(signal);
    }
    // Deleted items were announced invalid; now they go (§8.3).
    auto removed = std::move(batch_removed_);
    batch_removed_.clear();
    for (const auto& p : removed)
        if (auto it = items_.find(p); it != items_.end() && it->second->removing_) erase_item(p);
}

// --- remote writes ---

std::size_t Service::on_write(std::function<void(const Write&)> fn) {
    observers_.emplace(next_observer_, std::move(fn));
    return next_observer_++;
}

void Service::remove_write_observer(std::size_t id) { observers_.erase(id); }

WriteStream Service::writes() {
    auto state = std::make_shared<WriteStream::State>();
    std::erase_if(streams_, [](const auto& w) { return w.expired(); });
    streams_.push_back(state);
    return WriteStream(state);
}

void Service::write_accepted(Item& item, Value old_value, const std::string& sender, bool changed) {
    if (changed && log_.enabled(write_log_level_)) {
        // As the item's text shows it (a setpoint in whole watts, not 17 digits).
        auto shown = [&](const Value& v) {
            if (v.is_invalid() || !item.options_.text()) return fmt::format("{:r}", v);
            try {
                return item.options_.text()(v);
            } catch (const std::exception&) {
                return fmt::format("{:r}", v);
            }
        };
        log_.write(write_log_level_, fmt::format("{}: {} written by {}: {} -> {}", name_, item.path_, sender,
                                                 shown(old_value), shown(item.value_)));
    }
    else log_.debug("{}: {} rewritten by {}: {:r}", name_, item.path_, sender, item.value_);
    Write w{item.path_, std::move(old_value), item.value_, sender, changed};
    item.waiters_->last = item.value_;
    ++item.waiters_->writes;
    item.waiters_->event.set();
    for (auto& weak : streams_)
        if (auto s = weak.lock()) {
            s->queue.push_back(w);
            s->event.set();
        }
    auto observers = observers_;  // an observer may remove itself
    for (auto& [id, fn] : observers) {
        try {
            fn(w);
        } catch (const std::exception& e) {
            log_.error("{}: write observer failed for {}: {}", name_, w.path, e.what());
        }
    }
}

/// §3.2 in velib's order. Replies before returning; returns the accepted
/// write's old value when the value changed.
void Service::handle_set_value(Item& item, sdbus::MethodCall& call) {
    const std::string sig = detail::body_signature(call);
    auto reply_code = [&](std::int32_t code) {
        if (call.doesntExpectReply()) return;
        auto r = call.createReply();
        r << code;
        r.send();
    };
    Value written;
    try {
        if (sig.empty()) throw std::invalid_argument("no argument");
        written = read_value(call, sig);  // also rejects more than one argument
    } catch (const std::invalid_argument& e) {
        throw sdbus::Error(error_invalid_args,
                           fmt::format("SetValue takes one value (a variant), got signature '{}': {}", sig, e.what()));
    }
    // A refused write is logged at info once per item and reason (later ones
    // at debug): a user sees why another program's write did not take.
    auto refuse = [&](std::int32_t code, std::string_view reason) {
        const bool first = item.waiters_->refusals_logged.emplace(reason).second;
        log_.log(first ? LogLevel::info : LogLevel::debug, "{}: write of {:r} to {} by {} refused with {}: {}{}", name_,
                 written, item.path_, call.getSender(), code, reason,
                 first ? "; further refusals for this reason are logged at debug" : "");
        reply_code(code);
    };
    if (item.options_.write_policy()) {
        const std::string path = item.path_;
        WriteResult r = item.options_.write_policy()(item, written);
        if (find(path) != &item) return reply_code(r.code);  // the policy removed it
        if (!r.store && r.code != 0) return refuse(r.code, "its write policy said no");
        if (!r.store || *r.store == item.value_) return reply_code(r.code);
        Value old_value = std::exchange(item.value_, std::move(*r.store));
        batch_changed_.erase(path);
        emit_properties_changed(item);
        reply_code(r.code);
        write_accepted(item, std::move(old_value), call.getSender());
        return;
    }
    if (!item.options_.is_writeable()) return refuse(1, "not writeable");
    auto coerced = coerce(written, item.options_.type());
    if (!coerced) return refuse(1, "wrong type (cannot be converted to the item's type)");
    if (*coerced == item.value_) {  // no validator, no signal, type kept
        reply_code(0);
        if (item.options_.reports_equal_writes()) write_accepted(item, item.value_, call.getSender(), false);
        return;
    }
    if (item.options_.min() || item.options_.max()) {
        if (coerced->is_valid()) {
            auto d = coerced->as_number();
            if (!d || (item.options_.min() && *d < item.options_.min()->as_number().value_or(*d)) ||
                (item.options_.max() && *d > item.options_.max()->as_number().value_or(*d)))
                return refuse(2, "outside the item's limits");
        }
    }
    const std::string path = item.path_;
    const bool valid = !item.options_.validator() || item.options_.validator()(*coerced);
    if (find(path) != &item) return reply_code(2);  // the validator removed it
    if (!valid) return refuse(2, "its validator said no");
    Value old_value = std::exchange(item.value_, std::move(*coerced));
    batch_changed_.erase(path);  // announced here, not again by an open batch
    emit_properties_changed(item);  // before the reply, as velib
    reply_code(0);
    write_accepted(item, std::move(old_value), call.getSender());
}

bool Service::is_our_path(const std::string& path, Kind* kind) const {
    if (path == "/") {
        *kind = Kind::root;
        return true;
    }
    if (auto it = items_.find(path); it != items_.end()) {
        *kind = Kind::item;
        return true;
    }
    if (nodes_.count(path)) {
        *kind = Kind::node;
        return true;
    }
    return false;
}

void Service::dispatch(const std::string& path, sdbus::MethodCall& call) {
    ++dispatch_depth_;
    std::string saved = std::exchange(dispatching_, path);
    try {
        try {
            Kind kind;
            if (!is_our_path(path, &kind))
                throw sdbus::Error(error_unknown_object, fmt::format("Unknown object '{}'.", path));
            const std::string member = call.getMemberName();
            if (const auto* m = extra_method(kind, member, sd_bus_message_get_interface(detail::raw_message(call)))) {
                m->handler(path, call);
            } else {
                auto unknown = [&]() {
                    return sdbus::Error(error_unknown_method,
                                        fmt::format("{} has no method {}", path, member));
                };
                auto reply = [&](const auto& value) {
                    if (call.doesntExpectReply()) return;
                    auto r = call.createReply();
                    r << value;
                    r.send();
                };
                if (kind == Kind::item) {
                    Item& item = *items_.at(path);
                    if (member == "GetValue") reply(to_variant(item.value_));
                    else if (member == "GetText") reply(item.text());
                    else if (member == "SetValue") handle_set_value(item, call);
                    else if (member == "GetDescription") reply(item.options_.description());
                    else if (member == "GetMin" && item.options_.min()) reply(to_variant(*item.options_.min()));
                    else if (member == "GetMax" && item.options_.max()) reply(to_variant(*item.options_.max()));
                    else if (member == "GetDefault" && item.options_.default_value()) reply(to_variant(*item.options_.default_value()));
                    else throw unknown();
                } else if (member == "GetValue" || member == "GetText") {
                    // §4: relative keys, items only; `a{sv}` of values or `a{ss}` of texts.
                    const std::size_t skip = path == "/" ? 1 : path.size() + 1;
                    auto [b, e] = below(items_, path);
                    if (member == "GetValue") {
                        Entry values;
                        for (auto it = b; it != e; ++it) values.emplace(it->first.substr(skip), to_variant(it->second->value_));
                        reply(sdbus::Variant(values));
                    } else {
                        std::map<std::string, std::string> texts;
                        for (auto it = b; it != e; ++it) texts.emplace(it->first.substr(skip), it->second->text());
                        reply(sdbus::Variant(texts));
                    }
                } else if (member == "GetItems" && kind == Kind::root) {
                    Entries all;
                    for (const auto& [p, item] : items_) all.emplace(p, entry_of(*item, true));
                    reply(all);
                } else throw unknown();
            }
        } catch (const sdbus::Error& e) {
            send_error(call, e);
        } catch (const std::exception& e) {
            log_.error("{}: {} {} failed: {}", name_, path, call.getMemberName(), e.what());
            send_error(call, sdbus::Error(error_failed, e.what()));
        } catch (...) {
            log_.error("{}: {} {} failed with an unknown exception", name_, path, call.getMemberName());
            send_error(call, sdbus::Error(error_failed, "unknown exception"));
        }
    } catch (...) {
        // Even the error reply failed (connection gone); nothing may escape into sd-bus.
        log_.error("{}: cannot reply to a call on {}", name_, path);
    }
    dispatching_ = std::move(saved);
    if (--dispatch_depth_ == 0) {
        graveyard_.clear();
        dead_items_.clear();
    }
}

// --- the name ---

Task<void> Service::start(Duration timeout) {
    if (started_) co_return;
    for (const char* p : {"/Mgmt/ProcessName", "/Mgmt/ProcessVersion", "/Mgmt/Connection", "/DeviceInstance",
                          "/ProductId", "/ProductName", "/FirmwareVersion", "/HardwareVersion", "/Connected"})
        if (device_ && !find(p)) log_.warning("{}: mandatory path {} is missing (Venus consumers may ignore the service)", name_, p);
    // DBUS_NAME_FLAG_DO_NOT_QUEUE: fail at once when the name is owned (§8.1).
    auto reply = co_await bus_call(*bus_, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "RequestName", timeout, name_, std::uint32_t(4));
    std::uint32_t code = 0;
    reply >> code;
    if (code == 1 || code == 4) {
        started_ = true;
        log_.info("{}: on the bus with {} items as {}", name_, items_.size(), bus_->unique_name());
        co_return;
    }
    std::string owner = "another connection";
    try {
        auto r = co_await bus_call(*bus_, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "GetNameOwner", timeout, name_);
        std::string unique;
        r >> unique;
        owner = unique;
        auto r2 = co_await bus_call(*bus_, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                      "GetConnectionUnixProcessID", timeout, unique);
        std::uint32_t pid = 0;
        r2 >> pid;
        owner = fmt::format("{} (pid {})", unique, pid);
    } catch (const DBusError&) {
        // keep what we have: the name may have gone meanwhile
    }
    throw NameTakenError(name_, owner);
}

Task<void> Service::stop(Duration timeout) {
    if (!started_) co_return;
    if (invalidate_on_stop_) {
        // Measurements go invalid and /Connected goes 0; the identity stays
        // valid: an invalid /DeviceInstance can stall systemcalc's scan and
        // blank names flash in the GUI (venus-dbus.md §8.2, §8.4).
        static const std::set<std::string, std::less<>> identity = {
            "/DeviceInstance", "/ProductId",          "/ProductName",      "/FirmwareVersion", "/HardwareVersion",
            "/Mgmt/ProcessName", "/Mgmt/ProcessVersion", "/Mgmt/Connection", "/CustomName",      "/Serial"};
        auto batch = this->batch();
        for (const auto& path : paths()) {
            if (path == "/Connected") set(path, 0);
            else if (!identity.count(path)) set(path, Value());
        }
    }
    started_ = false;
    auto reply = co_await bus_call(*bus_, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "ReleaseName", timeout, name_);
    std::uint32_t code = 0;
    reply >> code;
    if (code != 1) log_.warning("{}: ReleaseName answered {}", name_, code);
    else log_.info("{}: left the bus", name_);
}

} // namespace moat
