// A Venus service on D-Bus: items, nodes, signals, batches, writes, name
// (venus-dbus.md §3-§8). Method calls are answered in service_dispatch.cpp.
#include "service_internal.hpp"

#include <algorithm>

#include "bus_call.hpp"
#include "value_dbus.hpp"
#include "value_wire.hpp"

namespace moat {

namespace {

constexpr const char* error_invalid_args = "org.freedesktop.DBus.Error.InvalidArgs";

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

namespace {

/// `seen`: the count when written() was called (the task starts later).
Task<Value> wait_written(std::shared_ptr<Item::Waiters> w, std::string path, std::uint64_t seen) {
    auto& writes = w->writes();
    while (writes.count == seen) {
        if (w->removed) throw ItemRemoved(fmt::format("item {} was removed", path));
        writes.event.clear();
        co_await writes.event.wait();
    }
    co_return writes.last;
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
    if (waiters_->has_writes()) waiters_->writes().event.set();
}

std::string Item::text() const {
    Waiters& w = *waiters_;
    if (w.text_fresh) return w.text;
    auto render = [this]() -> std::string {
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
    };
    w.text = render();
    w.text_fresh = true;
    return w.text;
}

void Item::set(Value v) {
    if (v == value_) return;  // §2.3: nothing, and the stored type stays
    value_ = std::move(v);
    waiters_->text_fresh = false;
    service_->changed(*this);
}

void Item::reset() {
    if (!options_.default_value()) throw std::logic_error("item " + path_ + " has no default value");
    set(*options_.default_value());
}

Task<Value> Item::written() { return wait_written(waiters_, path_, waiters_->writes().count); }

void Item::set_options(ItemOptions options) {
    // Calls and Introspect consult the options as they come: nothing to re-register.
    options_ = std::move(options);
    waiters_->text_fresh = false;
}

void Item::announce(const Value::Dict& entries) {
    detail::MessageRef sig;
    wire::check(sd_bus_message_new_signal(service_->filter_->bus, &sig.m, path_.c_str(), busitem_interface,
                                          "PropertiesChanged"), "PropertiesChanged");
    int r = sd_bus_message_open_container(sig.m, 'a', "{sv}");
    for (const auto& [k, v] : entries) {
        if (r >= 0) r = sd_bus_message_open_container(sig.m, 'e', "sv");
        if (r >= 0) r = sd_bus_message_append(sig.m, "s", k.c_str());
        if (r >= 0) r = wire::append_variant(sig.m, v);
        if (r >= 0) r = sd_bus_message_close_container(sig.m);
    }
    if (r >= 0) r = sd_bus_message_close_container(sig.m);
    wire::check(r, "PropertiesChanged");
    detail::send_signal(service_->filter_->bus, sig.m);
}

// ---------------------------------------------------------------------------
// Service

Service::Service(Loop& loop, std::string name, const std::string& bus_spec, Logger log)
    : loop_(loop), name_(std::move(name)), log_(std::move(log)) {
    bus_ = Bus::open(loop_, bus_spec, log_);
    filter_ = std::make_unique<Filter>();
    filter_->service = this;
    // Any message of the connection lends its sd_bus and sdbus-c++'s
    // interface to the calls the filter adopts; this one is never sent.
    filter_->like = new_call(*bus_, name_, "/", busitem_interface, "GetValue").msg;
    filter_->bus = sd_bus_message_get_bus(detail::raw_message(filter_->like));
    sd_bus_slot* slot = nullptr;
    int r = sd_bus_add_filter(filter_->bus, &slot, &Filter::on_message, filter_.get());
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

void Service::add_method(unsigned kinds, std::string interface, std::string name, std::string in_signature,
                         std::string out_signature, MethodHandler handler) {
    if (!items_.empty() || !nodes_.empty())
        throw std::logic_error(fmt::format("{}: add_method({}) after items or nodes exist", name_, name));
    methods_.push_back(ExtraMethod{kinds, std::move(interface), std::move(name), std::move(in_signature),
                                   std::move(out_signature), std::move(handler)});
}

void Service::pin_node(const std::string& path) {
    if (!valid_object_path(path)) throw std::invalid_argument(fmt::format("{}: \"{}\" is not a valid node path", name_, path));
    if (items_.count(path)) throw std::invalid_argument(fmt::format("{}: {} is an item, not a node", name_, path));
    for (const auto& p : prefixes_of(path))
        if (items_.count(p)) throw std::invalid_argument(fmt::format("{}: {} is an item and cannot have {} below it", name_, p, path));
    auto all = prefixes_of(path);
    all.push_back(path);
    for (const auto& p : all) ++nodes_[p].items;  // never drops to 0 again
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
    for (const auto& p : prefixes_of(path)) ++nodes_[p].items;
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
        if (n != nodes_.end() && --n->second.items == 0) nodes_.erase(n);
    }
    batch_changed_.erase(path);
    // A handler on the stack may still use it; it goes when dispatch() returns.
    if (dispatch_depth_ > 0) dead_items_.push_back(std::move(item));
}

void Service::remove(const std::string& path) {
    Item& item = at(path);
    if (in_batch()) {
        if (item.removing_) return;
        item.removing_ = true;
        if (item.value_.is_valid()) {
            item.value_ = Value();
            item.waiters_->text_fresh = false;
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
    auto [b, e] = detail::below(items_, prefix);
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

void Service::emit_properties_changed(Item& item) {
    // {"Text": s, "Value": v}, in the key order sdbus-c++'s map gave them.
    detail::MessageRef sig;
    wire::check(sd_bus_message_new_signal(filter_->bus, &sig.m, item.path_.c_str(), busitem_interface,
                                          "PropertiesChanged"), "PropertiesChanged");
    int r = sd_bus_message_open_container(sig.m, 'a', "{sv}");
    if (r >= 0) r = sd_bus_message_append(sig.m, "{sv}", "Text", "s", item.text().c_str());
    if (r >= 0) r = sd_bus_message_open_container(sig.m, 'e', "sv");
    if (r >= 0) r = sd_bus_message_append(sig.m, "s", "Value");
    if (r >= 0) r = wire::append_variant(sig.m, item.value_);
    if (r >= 0) r = sd_bus_message_close_container(sig.m);
    if (r >= 0) r = sd_bus_message_close_container(sig.m);
    wire::check(r, "PropertiesChanged");
    detail::send_signal(filter_->bus, sig.m);
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
    // One ItemsChanged written in one pass over the changed paths (sorted, as
    // the map of maps it replaces gave them), each {"Text": s, "Value": v}.
    auto changed = std::move(batch_changed_);
    batch_changed_.clear();
    detail::MessageRef sig;
    int r = 0;
    for (const auto& p : changed) {
        auto it = items_.find(p);
        if (it == items_.end()) continue;
        if (!sig.m) {
            wire::check(sd_bus_message_new_signal(filter_->bus, &sig.m, "/", busitem_interface, "ItemsChanged"),
                        "ItemsChanged");
            r = sd_bus_message_open_container(sig.m, 'a', "{sa{sv}}");
        }
        const Item& item = *it->second;
        if (r >= 0) r = sd_bus_message_open_container(sig.m, 'e', "sa{sv}");
        if (r >= 0) r = sd_bus_message_append(sig.m, "s", p.c_str());
        if (r >= 0) r = sd_bus_message_open_container(sig.m, 'a', "{sv}");
        if (r >= 0) r = sd_bus_message_append(sig.m, "{sv}", "Text", "s", item.text().c_str());
        if (r >= 0) r = sd_bus_message_open_container(sig.m, 'e', "sv");
        if (r >= 0) r = sd_bus_message_append(sig.m, "s", "Value");
        if (r >= 0) r = wire::append_variant(sig.m, item.value_);
        for (int k = 0; k < 3 && r >= 0; ++k) r = sd_bus_message_close_container(sig.m);
    }
    if (sig.m) {
        if (r >= 0) r = sd_bus_message_close_container(sig.m);
        wire::check(r, "ItemsChanged");
        detail::send_signal(filter_->bus, sig.m);
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
    auto& writes = item.waiters_->writes();
    writes.last = item.value_;
    ++writes.count;
    writes.event.set();
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
        const bool first = item.waiters_->writes().refusals_logged.emplace(reason).second;
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
        item.waiters_->text_fresh = false;
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
    item.waiters_->text_fresh = false;
    batch_changed_.erase(path);  // announced here, not again by an open batch
    emit_properties_changed(item);  // before the reply, as velib
    reply_code(0);
    write_accepted(item, std::move(old_value), call.getSender());
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
