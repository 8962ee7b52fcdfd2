// Internal: method calls at the sdbus-c++ level, for the library's own
// clients (monitor, settings client, moat/dbus.hpp). Awaitable and
// cancellable; an error reply or a timeout is a moat::DBusError.
#pragma once

#include "moat/bus.hpp"
#include "moat/dbus.hpp"

#include <sdbus-c++/sdbus-c++.h>

#include <memory>
#include <optional>
#include <string>

namespace moat {

namespace detail {
struct MOAT_API BusAccess {
    /// Throws BusError for a Bus without a connection.
    static sdbus::IConnection& connection(Bus& bus);
    /// A Bus that connects to nothing (client commands that need no bus):
    /// every call through it (or a Monitor on it) throws BusError.
    static std::unique_ptr<Bus> unconnected(Loop& loop, Logger log);
};
inline sdbus::IConnection& connection(Bus& bus) { return BusAccess::connection(bus); }
} // namespace detail

/// A method call under construction: fill `msg` with `<<`, then await it.
struct BusCall {
    std::unique_ptr<sdbus::IProxy> proxy;  ///< keeps the pending reply alive
    sdbus::MethodCall msg;
    std::string what;                      ///< "dest path iface.method", for errors
};

MOAT_API BusCall new_call(Bus& bus, const std::string& dest, const std::string& path, const std::string& iface,
                          const std::string& method);

/// Yields the reply; throws DBusError for an error reply or a timeout (its
/// message prefixed with the call), Cancelled when its task is cancelled.
class MOAT_API BusCallAwaitable final : public Suspension {
public:
    BusCallAwaitable(BusCall c, Duration timeout) : call_(std::move(c)), timeout_(timeout) {}
    sdbus::MethodReply await_resume();

private:
    void start() override;
    void abort() override { pending_.cancel(); }
    BusCall call_;
    Duration timeout_;
    sdbus::PendingAsyncCall pending_;
    sdbus::MethodReply reply_;
    std::optional<sdbus::Error> error_;
};

/// The same, filled with `args` (sdbus-c++ types) in one go.
template <class... Args>
BusCallAwaitable bus_call(Bus& bus, const std::string& dest, const std::string& path, const std::string& iface,
                          const std::string& method, Duration timeout, const Args&... args) {
    BusCall c = new_call(bus, dest, path, iface, method);
    ((void)(c.msg << args), ...);
    return BusCallAwaitable(std::move(c), timeout);
}

/// A Venus BusItem SetValue (the Monitor's and the settings client's): the
/// service's answer (0: taken) in `code`, or -1 with the reason in `error`
/// when the call failed (an error reply, the timeout, no connection).
struct SetValueResult {
    int code = -1;
    std::string error;
};
Task<SetValueResult> busitem_set_value(Bus& bus, std::string dest, std::string path, Value value, Duration timeout);

} // namespace moat
