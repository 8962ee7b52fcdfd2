// D-Bus methods with moat::Value arguments: calling another service's
// method, and exporting methods of your own (a control interface, say). For
// Venus items (values, texts, settings) use Service, Monitor and
// SettingsClient instead.
//
// Arguments are written by their D-Bus signature, one complete type per
// argument ("s", "a{sv}", "v", "ai"...): an integer Value for "i" or "d", a
// Dict for "a{sv}", an invalid Value for a Venus "no value" ("v" → empty
// array). A struct "(...)" is a List of its members in order, also inside
// arrays: "a(db)" is a List of two-element Lists. Replies and the arguments
// of exported methods are read as read into Value everywhere: variants
// flattened, an empty array invalid, a struct a List of its members.
#pragma once

#include "moat/export.hpp"

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "moat/bus.hpp"
#include "moat/task.hpp"
#include "moat/value.hpp"

namespace moat {

/// An error reply, or a call that got none (a timeout is
/// org.freedesktop.DBus.Error.NoReply). what() is "NAME: MESSAGE".
class MOAT_API DBusError : public std::runtime_error {
public:
    DBusError(std::string name, std::string message);
    /// The D-Bus error name, e.g. "org.freedesktop.DBus.Error.ServiceUnknown".
    const std::string& name() const { return name_; }
    const std::string& message() const { return message_; }

private:
    std::string name_, message_;
};

/// Call `interface`.`method` on `service`'s object `path` with `args`
/// written as `signature`; the reply's values. Throws DBusError (an error
/// reply, no reply within `timeout`), BusError (the bus went away),
/// std::invalid_argument (args that do not fit the signature), Cancelled.
MOAT_API Task<std::vector<Value>> call_method(Bus& bus, std::string service, std::string path, std::string interface,
                                              std::string method, std::string signature = {},
                                              std::vector<Value> args = {}, Duration timeout = Bus::default_timeout);

/// Methods and signals of your own on one object path of `bus`. Handlers run
/// on the loop; a synchronous one answers at once, an asynchronous one when
/// its task ends. What a handler throws becomes the error reply (a DBusError
/// as itself, anything else as org.freedesktop.DBus.Error.Failed with its
/// message). Destroying the object removes it from the bus and cancels the
/// asynchronous calls still running: their callers get
/// org.freedesktop.DBus.Error.Failed at once, and each task resumes once more
/// (on the next loop turn) only to unwind: after a Cancelled it must not
/// touch what it captured by reference, nor await anything (the plugin's code
/// may be unloaded soon after). A task whose wait had already ended in that
/// loop turn resumes normally: a handler that touches its owner after an
/// await checks first that the owner still exists (a shared flag).
class MOAT_API DBusObject {
public:
    using Handler = std::function<std::vector<Value>(const std::vector<Value>& args)>;
    using AsyncHandler = std::function<Task<std::vector<Value>>(std::vector<Value> args)>;

    DBusObject(Bus& bus, std::string path);
    ~DBusObject();
    DBusObject(const DBusObject&) = delete;
    DBusObject& operator=(const DBusObject&) = delete;

    /// Declare a method (before publish()). Its arguments are read by
    /// `in_signature`, its results written by `out_signature`.
    void add_method(std::string interface, std::string name, std::string in_signature, std::string out_signature,
                    Handler handler);
    /// Declare a method whose reply is sent when the task `handler` returns
    /// ends (before publish()). Each call runs in a task of its own; the
    /// handler object is kept alive until that task ended.
    void add_async_method(std::string interface, std::string name, std::string in_signature,
                          std::string out_signature, AsyncHandler handler);
    /// Declare a signal (before publish()); it appears in the introspection.
    void add_signal(std::string interface, std::string name, std::string signature);
    /// Names for the arguments of a method or signal declared before, shown
    /// by introspection (before publish(); one name per complete type of the
    /// signature; a signal's names are `in_names`).
    void name_arguments(const std::string& interface, const std::string& member, std::vector<std::string> in_names,
                        std::vector<std::string> out_names = {});
    /// Make the methods callable (once, after the last add_method).
    void publish();
    /// Emit a signal declared with add_signal (after publish()), `args`
    /// written by its signature. Throws std::invalid_argument (args that do
    /// not fit), std::logic_error (an undeclared signal, before publish()).
    void emit_signal(const std::string& interface, const std::string& name, const std::vector<Value>& args);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

} // namespace moat
