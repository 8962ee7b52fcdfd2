// Method calls on a service's paths (venus-dbus.md §3-§6): one connection
// filter for every path instead of an object per path (service_internal.hpp);
// the hot replies are written straight into sd-bus messages (value_wire.hpp).
#include "service_internal.hpp"

#include <cstring>
#include <iterator>
#include <set>
#include <vector>

#include "value_dbus.hpp"
#include "value_wire.hpp"

namespace moat {

namespace {

constexpr const char* error_unknown_object = "org.freedesktop.DBus.Error.UnknownObject";
constexpr const char* error_unknown_method = "org.freedesktop.DBus.Error.UnknownMethod";
constexpr const char* error_invalid_args = "org.freedesktop.DBus.Error.InvalidArgs";
constexpr const char* error_failed = "org.freedesktop.DBus.Error.Failed";
constexpr const char* introspectable = "org.freedesktop.DBus.Introspectable";

/// A built-in BusItem method: name, argument and reply signatures.
struct Builtin {
    const char* name;
    const char* in;
    const char* out;
};

// What velib offers per object kind (§3-§6). GetMin/GetMax/GetDefault only
// on items whose options have them.
constexpr Builtin root_methods[] = {{"GetValue", "", "v"}, {"GetText", "", "v"}, {"GetItems", "", "a{sa{sv}}"}};
constexpr Builtin node_methods[] = {{"GetValue", "", "v"}, {"GetText", "", "v"}};
constexpr Builtin item_methods[] = {{"GetValue", "", "v"},        {"GetText", "", "s"}, {"SetValue", "v", "i"},
                                    {"GetDescription", "si", "s"}, {"GetMin", "", "v"},  {"GetMax", "", "v"},
                                    {"GetDefault", "", "v"}};

void send_error(sdbus::MethodCall& call, const sdbus::Error& e) {
    if (call.doesntExpectReply()) return;
    call.createErrorReply(e).send();
}

/// Sends the reply `fill(reply)` writes, unless the caller asked for none.
template <class Fill> void reply_with(sd_bus_message* call, Fill&& fill) {
    if (!sd_bus_message_get_expect_reply(call)) return;
    detail::MessageRef reply;
    wire::check(sd_bus_message_new_method_return(call, &reply.m), "reply");
    wire::check(fill(reply.m), "reply");
    wire::check(sd_bus_send(nullptr, reply.m, nullptr), "reply");
}

int append_entry(sd_bus_message* m, const char* key, const Value& v) {
    int r = sd_bus_message_open_container(m, 'e', "sv");
    if (r >= 0) r = sd_bus_message_append(m, "s", key);
    if (r >= 0) r = wire::append_variant(m, v);
    if (r >= 0) r = sd_bus_message_close_container(m);
    return r;
}

/// One method in an Introspect answer.
struct MethodInfo {
    std::string interface, name, in, out;
};

void xml_args(std::string& out, const std::string& signature, const char* direction) {
    for (const auto& t : split_signature(signature))
        out += fmt::format("   <arg type=\"{}\" direction=\"{}\"/>\n", t, direction);
}

/// The Introspect XML (§6): the standard interfaces, the object's methods
/// grouped by interface, its signal on BusItem, and its child nodes.
std::string introspection_xml(const std::vector<MethodInfo>& methods, const char* signal, const char* signal_sig,
                              const std::set<std::string>& children) {
    std::string out =
        "<!DOCTYPE node PUBLIC \"-//freedesktop//DTD D-BUS Object Introspection 1.0//EN\"\n"
        "\"http://www.freedesktop.org/standards/dbus/1.0/introspect.dtd\">\n<node>\n"
        " <interface name=\"org.freedesktop.DBus.Peer\">\n  <method name=\"Ping\"/>\n"
        "  <method name=\"GetMachineId\">\n   <arg type=\"s\" direction=\"out\"/>\n  </method>\n </interface>\n"
        " <interface name=\"org.freedesktop.DBus.Introspectable\">\n  <method name=\"Introspect\">\n"
        "   <arg type=\"s\" direction=\"out\"/>\n  </method>\n </interface>\n";
    std::set<std::string> interfaces{busitem_interface};
    for (const auto& m : methods) interfaces.insert(m.interface);
    for (const auto& i : interfaces) {
        out += fmt::format(" <interface name=\"{}\">\n", i);
        for (const auto& m : methods) {
            if (m.interface != i) continue;
            out += fmt::format("  <method name=\"{}\">\n", m.name);
            xml_args(out, m.in, "in");
            xml_args(out, m.out, "out");
            out += "  </method>\n";
        }
        if (signal && i == busitem_interface)
            out += fmt::format("  <signal name=\"{}\">\n   <arg type=\"{}\"/>\n  </signal>\n", signal, signal_sig);
        out += " </interface>\n";
    }
    for (const auto& c : children) out += fmt::format(" <node name=\"{}\"/>\n", c);
    return out + "</node>\n";
}

/// The next path segments below `path` among the keys of a path-sorted map.
template <class Map> void add_children(std::set<std::string>& out, const Map& map, const std::string& path) {
    const std::string prefix = path == "/" ? "/" : path + "/";
    auto [it, end] = detail::below(map, path);
    while (it != end) {
        const std::string& key = it->first;
        const std::size_t stop = key.find('/', prefix.size());
        std::string segment = key.substr(prefix.size(), stop == std::string::npos ? std::string::npos : stop - prefix.size());
        // Skip the segment's whole subtree: '0' follows '/'.
        it = map.lower_bound(prefix + segment + "0");
        out.insert(std::move(segment));
    }
}

} // namespace

namespace detail {
void send_signal(sd_bus* bus, sd_bus_message* m) { wire::check(sd_bus_send(bus, m, nullptr), "send"); }
} // namespace detail

int Service::Filter::on_message(sd_bus_message* m, void* userdata, sd_bus_error*) noexcept {
    auto* self = static_cast<Filter*>(userdata);
    try {
        if (!sd_bus_message_is_method_call(m, nullptr, nullptr)) return 0;
        const char* path = sd_bus_message_get_path(m);
        if (!path || !sd_bus_message_get_member(m)) return 0;
        // Peer (Ping, GetMachineId) on any path: sd-bus answers it.
        if (const char* iface = sd_bus_message_get_interface(m); iface && !std::strcmp(iface, "org.freedesktop.DBus.Peer"))
            return 0;
        Kind kind;
        std::string p(path);
        if (!self->service->is_our_path(p, &kind)) return 0;  // sd-bus answers UnknownObject
        sdbus::MethodCall call = detail::adopt_call(m, self->like);
        self->service->dispatch(p, call);
        return 1;
    } catch (...) {
        return 0;
    }
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
    sd_bus_message* m = detail::raw_message(call);
    try {
        try {
            Kind kind;
            if (!is_our_path(path, &kind))
                throw sdbus::Error(error_unknown_object, fmt::format("Unknown object '{}'.", path));
            Item* item = kind == Kind::item ? items_.at(path).get() : nullptr;
            const char* iface = sd_bus_message_get_interface(m);
            const std::string member = sd_bus_message_get_member(m);
            // The methods velib's objects have, per kind, as the options stand now.
            auto builtin = [&](std::string_view name) -> const Builtin* {
                auto find = [&](const auto& table) -> const Builtin* {
                    for (const auto& b : table)
                        if (name == b.name) return &b;
                    return nullptr;
                };
                const Builtin* b = kind == Kind::root ? find(root_methods)
                                   : kind == Kind::node ? find(node_methods) : find(item_methods);
                if (!b || overridden(kind, busitem_interface, b->name)) return nullptr;
                if (item && ((name == "GetMin" && !item->options_.min()) || (name == "GetMax" && !item->options_.max()) ||
                             (name == "GetDefault" && !item->options_.default_value())))
                    return nullptr;
                return b;
            };
            auto unknown = [&]() {
                return sdbus::Error(error_unknown_method, fmt::format("{} has no method {}", path, member));
            };
            auto text_of = [](const Item& i) -> const std::string& {
                if (!i.waiters_->text_fresh) (void)i.text();
                return i.waiters_->text;
            };
            if (iface && !std::strcmp(iface, introspectable)) {
                if (member != "Introspect") throw unknown();
                std::vector<MethodInfo> methods;
                const Builtin* begin = kind == Kind::root ? std::begin(root_methods)
                                       : kind == Kind::node ? std::begin(node_methods) : std::begin(item_methods);
                const Builtin* end = kind == Kind::root ? std::end(root_methods)
                                     : kind == Kind::node ? std::end(node_methods) : std::end(item_methods);
                for (const Builtin* b = begin; b != end; ++b)
                    if (builtin(b->name)) methods.push_back({busitem_interface, b->name, b->in, b->out});
                for (const auto& x : methods_)
                    if (x.kinds & bit(kind)) methods.push_back({x.interface, x.name, x.in_signature, x.out_signature});
                std::set<std::string> children;
                if (!item) {
                    add_children(children, items_, path);
                    add_children(children, nodes_, path);
                }
                const std::string xml = introspection_xml(methods, kind == Kind::root ? "ItemsChanged" : item ? "PropertiesChanged" : nullptr,
                                                          kind == Kind::root ? "a{sa{sv}}" : "a{sv}", children);
                reply_with(m, [&](sd_bus_message* r) { return sd_bus_message_append(r, "s", xml.c_str()); });
            } else if (const auto* extra = extra_method(kind, member, iface)) {
                extra->handler(path, call);
            } else if (iface && std::strcmp(iface, busitem_interface) != 0) {
                throw unknown();  // Properties and any other interface: velib's objects have none
            } else if (const Builtin* b = builtin(member); !b) {
                throw unknown();
            } else if (member == "SetValue") {
                handle_set_value(*item, call);  // any signature: it reads bare values too (§3.2)
            } else if (const char* sig = sd_bus_message_get_signature(m, 1); iface && std::strcmp(sig, b->in) != 0) {
                // What sd-bus answered for a registered method; calls without an interface pass (velib).
                throw sdbus::Error(error_invalid_args, fmt::format("Invalid arguments '{}' to call {}.{}(), expecting '{}'.",
                                                                   sig, iface, member, b->in));
            } else if (item) {
                const ItemOptions& o = item->options_;
                reply_with(m, [&](sd_bus_message* r) {
                    if (member == "GetValue") return wire::append_variant(r, item->value_);
                    if (member == "GetText") return sd_bus_message_append(r, "s", text_of(*item).c_str());
                    if (member == "GetDescription") return sd_bus_message_append(r, "s", o.description().c_str());
                    if (member == "GetMin") return wire::append_variant(r, *o.min());
                    if (member == "GetMax") return wire::append_variant(r, *o.max());
                    return wire::append_variant(r, *o.default_value());
                });
            } else if (member == "GetItems") {
                // a{sa{sv}}: every item with Value and Text (and Min, Max, Default when it has them),
                // keys sorted as the map of maps this replaces gave them.
                reply_with(m, [&](sd_bus_message* r) {
                    int e = sd_bus_message_open_container(r, 'a', "{sa{sv}}");
                    for (const auto& [p, it] : items_) {
                        if (e < 0) break;
                        const ItemOptions& o = it->options_;
                        e = sd_bus_message_open_container(r, 'e', "sa{sv}");
                        if (e >= 0) e = sd_bus_message_append(r, "s", p.c_str());
                        if (e >= 0) e = sd_bus_message_open_container(r, 'a', "{sv}");
                        if (e >= 0 && o.default_value()) e = append_entry(r, "Default", *o.default_value());
                        if (e >= 0 && o.max()) e = append_entry(r, "Max", *o.max());
                        if (e >= 0 && o.min()) e = append_entry(r, "Min", *o.min());
                        if (e >= 0) e = sd_bus_message_append(r, "{sv}", "Text", "s", text_of(*it).c_str());
                        if (e >= 0) e = append_entry(r, "Value", it->value_);
                        if (e >= 0) e = sd_bus_message_close_container(r);
                        if (e >= 0) e = sd_bus_message_close_container(r);
                    }
                    if (e >= 0) e = sd_bus_message_close_container(r);
                    return e;
                });
            } else {
                // §4: GetValue/GetText on `/` or a node: relative keys, items only, as a
                // variant of `a{sv}` (values) or `a{ss}` (texts).
                const bool values = member == "GetValue";
                const std::size_t skip = path == "/" ? 1 : path.size() + 1;
                // (a pair, not a structured binding: clang 14 cannot capture those in a lambda)
                const auto range = detail::below(items_, path);
                reply_with(m, [&](sd_bus_message* r) {
                    int e = sd_bus_message_open_container(r, 'v', values ? "a{sv}" : "a{ss}");
                    if (e >= 0) e = sd_bus_message_open_container(r, 'a', values ? "{sv}" : "{ss}");
                    for (auto it = range.first; it != range.second && e >= 0; ++it) {
                        const char* key = it->first.c_str() + skip;
                        if (values) e = append_entry(r, key, it->second->value_);
                        else e = sd_bus_message_append(r, "{ss}", key, text_of(*it->second).c_str());
                    }
                    if (e >= 0) e = sd_bus_message_close_container(r);
                    if (e >= 0) e = sd_bus_message_close_container(r);
                    return e;
                });
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
    if (--dispatch_depth_ == 0) dead_items_.clear();
}

} // namespace moat
