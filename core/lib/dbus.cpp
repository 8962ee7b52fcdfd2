#include "moat/dbus.hpp"

#include "bus_call.hpp"
#include "sdbus_access.hpp"
#include "value_dbus.hpp"

#include <fmt/format.h>
#include <limits>

namespace moat {

DBusError::DBusError(std::string name, std::string message)
    : std::runtime_error(name + ": " + message), name_(std::move(name)), message_(std::move(message)) {}

namespace {

std::invalid_argument mismatch(const Value& v, std::string_view type) {
    return std::invalid_argument(fmt::format("{} does not fit D-Bus type '{}'", repr(v), type));
}

template <class T> void put_int(sdbus::Message& msg, const Value& v, std::string_view type) {
    if (v.kind() != Value::Kind::integer) throw mismatch(v, type);
    const std::int64_t i = v.as_int();
    if constexpr (std::is_same_v<T, std::uint64_t>) {
        if (i < 0) throw mismatch(v, type);
    } else {
        if (i < std::int64_t(std::numeric_limits<T>::min()) || i > std::int64_t(std::numeric_limits<T>::max()))
            throw mismatch(v, type);
    }
    msg << static_cast<T>(i);
}

/// Writes one complete type; the inverse of read_value() for what a method
/// argument needs (no structs, no fds).
void write(sdbus::Message& msg, const Value& v, std::string_view type) {
    switch (type.front()) {
    case 'b':
        if (v.kind() != Value::Kind::boolean) throw mismatch(v, type);
        msg << v.as_bool();
        return;
    case 'y': return put_int<std::uint8_t>(msg, v, type);
    case 'n': return put_int<std::int16_t>(msg, v, type);
    case 'q': return put_int<std::uint16_t>(msg, v, type);
    case 'i': return put_int<std::int32_t>(msg, v, type);
    case 'u': return put_int<std::uint32_t>(msg, v, type);
    case 'x': return put_int<std::int64_t>(msg, v, type);
    case 't': return put_int<std::uint64_t>(msg, v, type);
    case 'd': {
        auto d = v.as_number();
        if (!d) throw mismatch(v, type);
        msg << *d;
        return;
    }
    case 's':
    case 'o':
    case 'g':
        if (v.kind() != Value::Kind::string) throw mismatch(v, type);
        if (type.front() == 's') msg << v.as_string();
        else if (type.front() == 'o') msg << sdbus::ObjectPath(v.as_string());
        else msg << sdbus::Signature(v.as_string());
        return;
    case 'v': msg << to_variant(v); return;
    case 'a': {
        const std::string element(type.substr(1));
        msg.openContainer(element);
        if (element.front() == '{') {
            if (v.kind() != Value::Kind::dict && v.is_valid()) throw mismatch(v, type);
            const std::string entry = element.substr(1, element.size() - 2);
            if (entry.front() != 's') throw std::invalid_argument(fmt::format("D-Bus type '{}': only string keys", type));
            if (v.is_valid())
                for (const auto& [key, item] : v.as_dict()) {
                    msg.openDictEntry(entry);
                    msg << key;
                    write(msg, item, std::string_view(entry).substr(1));
                    msg.closeDictEntry();
                }
        } else {
            if (v.kind() != Value::Kind::list && v.is_valid()) throw mismatch(v, type);
            if (v.is_valid())
                for (const auto& item : v.as_list()) write(msg, item, element);
        }
        msg.closeContainer();
        return;
    }
    default: throw std::invalid_argument(fmt::format("D-Bus type '{}' cannot be written from a Value", type));
    }
}

void write_arguments(sdbus::Message& msg, std::string_view signature, const std::vector<Value>& args) {
    const auto types = split_signature(signature);
    if (types.size() != args.size())
        throw std::invalid_argument(
            fmt::format("signature '{}' takes {} arguments, {} given", signature, types.size(), args.size()));
    for (std::size_t i = 0; i < args.size(); ++i) write(msg, args[i], types[i]);
}

} // namespace

Task<std::vector<Value>> call_method(Bus& bus, std::string service, std::string path, std::string interface,
                                     std::string method, std::string signature, std::vector<Value> args,
                                     Duration timeout) {
    BusCall c = new_call(bus, service, path, interface, method);
    write_arguments(c.msg, signature, args);
    sdbus::MethodReply reply = co_await BusCallAwaitable(std::move(c), timeout);
    co_return detail::read_arguments(reply);
}

// ---- exported objects ----

struct DBusObject::Impl {
    std::string path;
    std::unique_ptr<sdbus::IObject> object;
    bool published = false;
};

DBusObject::DBusObject(Bus& bus, std::string path) : impl_(std::make_unique<Impl>(Impl{std::move(path), {}})) {
    impl_->object = sdbus::createObject(detail::connection(bus), impl_->path);
}

DBusObject::~DBusObject() = default;

void DBusObject::add_method(std::string interface, std::string name, std::string in_signature,
                            std::string out_signature, Handler handler) {
    if (impl_->published) throw std::logic_error(fmt::format("{}: add_method({}) after publish()", impl_->path, name));
    (void)split_signature(in_signature);  // a bad signature is the caller's bug: say so now
    (void)split_signature(out_signature);
    const std::string what = fmt::format("{} {}.{}", impl_->path, interface, name);
    impl_->object->registerMethod(interface, name, in_signature, out_signature,
                                  [handler = std::move(handler), out_signature, what](sdbus::MethodCall call) {
                                      // Only sdbus::Error may leave a handler (anything else
                                      // unwinds through libsystemd).
                                      std::vector<Value> results;
                                      try {
                                          auto args = detail::read_arguments(call);
                                          results = handler(args);
                                          auto reply = call.createReply();
                                          write_arguments(reply, out_signature, results);
                                          reply.send();
                                      } catch (const DBusError& e) {
                                          throw sdbus::Error(e.name(), e.message());
                                      } catch (const sdbus::Error&) {
                                          throw;
                                      } catch (const std::exception& e) {
                                          throw sdbus::Error("org.freedesktop.DBus.Error.Failed", e.what());
                                      } catch (...) {
                                          throw sdbus::Error("org.freedesktop.DBus.Error.Failed", what + ": unknown error");
                                      }
                                  });
}

void DBusObject::publish() {
    if (impl_->published) return;
    impl_->object->finishRegistration();
    impl_->published = true;
}

} // namespace moat
