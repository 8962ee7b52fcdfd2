#include "moat/dbus.hpp"

#include "bus_call.hpp"
#include "sdbus_access.hpp"
#include "value_dbus.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <limits>
#include <list>
#include <map>

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
/// argument needs (a struct from the List of its members; no fds).
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
    case '(': {
        const std::string members(type.substr(1, type.size() - 2));
        const auto types = split_signature(members);
        if (v.kind() != Value::Kind::list || v.as_list().size() != types.size()) throw mismatch(v, type);
        msg.openStruct(members);
        for (std::size_t i = 0; i < types.size(); ++i) write(msg, v.as_list()[i], types[i]);
        msg.closeStruct();
        return;
    }
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
    co_return detail::read_arguments(reply, true);
}

// ---- exported objects ----

namespace {

/// The error reply for what a handler threw (DBusError as itself).
sdbus::Error reply_error(std::exception_ptr e, const std::string& what) {
    try {
        std::rethrow_exception(e);
    } catch (const DBusError& d) {
        return sdbus::Error(d.name(), d.message());
    } catch (const sdbus::Error& s) {
        return s;
    } catch (const std::exception& x) {
        return sdbus::Error("org.freedesktop.DBus.Error.Failed", x.what());
    } catch (...) {
        return sdbus::Error("org.freedesktop.DBus.Error.Failed", what + ": unknown error");
    }
}

/// Send an error reply; a connection that is gone has nobody to answer.
void send_error(const sdbus::MethodCall& call, const sdbus::Error& e) {
    try {
        call.createErrorReply(e).send();
    } catch (const sdbus::Error&) {
    }
}

struct Member {
    std::string interface, name, in, out;
    std::vector<std::string> in_names, out_names;
    sdbus::method_callback callback;  ///< empty for a signal
};

/// One asynchronous call: its fiber (the root of its cancel scopes), its
/// task and the call to answer. It owns itself (`self`) until its task
/// ended, so destroying the object only detaches it.
struct CallRun {
    CallRun(Loop& loop, std::string name) : fiber{&loop, std::move(name)}, root(fiber, nullptr, false) {
        fiber.current = &root;
    }
    detail::Fiber fiber;
    detail::Scope root;
    std::shared_ptr<const DBusObject::AsyncHandler> handler;  ///< the closure the task may point into
    Task<std::vector<Value>> task;
    sdbus::MethodCall call;
    std::string out_signature, what;
    std::shared_ptr<CallRun> self;
    std::list<CallRun*>* runs = nullptr;  ///< the object's running calls; null once detached
    std::list<CallRun*>::iterator position;
};

/// The call's task: the handler's, started only if the object still exists
/// when the loop gets to it (a call that arrived as the object went away).
Task<std::vector<Value>> run_call(CallRun* run, std::vector<Value> args) {
    if (!run->runs) throw Cancelled();
    auto task = (*run->handler)(std::move(args));
    auto results = co_await task;
    co_return results;
}

/// The task ended (from its final suspend): answer, unless the object is gone.
void finish(CallRun* run) {
    auto& promise = run->task.handle().promise();
    if (run->runs) {
        run->runs->erase(run->position);
        run->runs = nullptr;
        if (promise.error) {
            send_error(run->call, reply_error(promise.error, run->what));
        } else {
            try {
                auto reply = run->call.createReply();
                write_arguments(reply, run->out_signature, promise.take());
                reply.send();
            } catch (...) {
                send_error(run->call, reply_error(std::current_exception(), run->what));
            }
        }
    }
    // Freed now, from inside its final suspend (which then touches nothing of
    // it): the frame's code and the handler may belong to a plugin library
    // that is unloaded before the next loop turn.
    std::shared_ptr<CallRun> keep = std::move(run->self);
}

} // namespace

struct DBusObject::Impl {
    Loop& loop;
    std::shared_ptr<LoopOwner> owner;  ///< of the code that made the object: its calls' tasks run as its
    std::string path;
    std::unique_ptr<sdbus::IObject> object;
    bool published = false;
    std::vector<Member> members;
    std::map<std::pair<std::string, std::string>, std::string> signals;  ///< (interface, name) → signature
    std::list<CallRun*> runs;

    void declare(Member m) {
        if (published)
            throw std::logic_error(fmt::format("{}: {}.{} declared after publish()", path, m.interface, m.name));
        (void)split_signature(m.in);  // a bad signature is the caller's bug: say so now
        (void)split_signature(m.out);
        members.push_back(std::move(m));
    }

    void start(const std::shared_ptr<const AsyncHandler>& handler, sdbus::MethodCall call, std::vector<Value> args,
               const std::string& out, const std::string& what) {
        auto run = std::make_shared<CallRun>(loop, what);
        run->fiber.owner = owner;
        run->handler = handler;
        run->task = run_call(run.get(), std::move(args));
        run->call = std::move(call);
        run->out_signature = out;
        run->what = what;
        auto h = run->task.handle();
        h.promise().fiber = &run->fiber;
        h.promise().on_done = [](void* arg) { finish(static_cast<CallRun*>(arg)); };
        h.promise().on_done_arg = run.get();
        runs.push_back(run.get());
        run->runs = &runs;
        run->position = std::prev(runs.end());
        run->self = run;
        loop.post_resume(&run->fiber, h);
    }
};

DBusObject::DBusObject(Bus& bus, std::string path)
    : impl_(std::make_unique<Impl>(Impl{bus.loop(), bus.loop().owner(), std::move(path), {}, false, {}, {}, {}})) {
    impl_->object = sdbus::createObject(detail::connection(bus), impl_->path);
}

DBusObject::~DBusObject() {
    // Calls still running are answered now (the connection is still there)
    // and cancelled; each frees itself once its task has unwound.
    auto runs = std::move(impl_->runs);
    for (CallRun* run : runs) {
        run->runs = nullptr;
        send_error(run->call, sdbus::Error("org.freedesktop.DBus.Error.Failed",
                                           run->what + ": the object was removed while the call ran"));
        run->root.cancel();
    }
}

namespace {

/// Runs `body` for a method call; only sdbus::Error may leave a handler
/// (anything else unwinds through libsystemd).
template <class Body> void guarded(const std::string& what, Body&& body) {
    try {
        body();
    } catch (...) {
        throw reply_error(std::current_exception(), what);
    }
}

} // namespace

void DBusObject::add_method(std::string interface, std::string name, std::string in_signature,
                            std::string out_signature, Handler handler) {
    const std::string what = fmt::format("{} {}.{}", impl_->path, interface, name);
    auto callback = [handler = std::move(handler), out_signature, what](sdbus::MethodCall call) {
        guarded(what, [&] {
            auto args = detail::read_arguments(call, true);
            auto results = handler(args);
            auto reply = call.createReply();
            write_arguments(reply, out_signature, results);
            reply.send();
        });
    };
    impl_->declare(Member{std::move(interface), std::move(name), std::move(in_signature), std::move(out_signature),
                          {}, {}, std::move(callback)});
}

void DBusObject::add_async_method(std::string interface, std::string name, std::string in_signature,
                                  std::string out_signature, AsyncHandler handler) {
    const std::string what = fmt::format("{} {}.{}", impl_->path, interface, name);
    auto shared = std::make_shared<const AsyncHandler>(std::move(handler));
    Impl* impl = impl_.get();
    auto callback = [impl, shared, out_signature, what](sdbus::MethodCall call) {
        guarded(what, [&] {
            auto args = detail::read_arguments(call, true);
            impl->start(shared, std::move(call), std::move(args), out_signature, what);
        });
    };
    impl_->declare(Member{std::move(interface), std::move(name), std::move(in_signature), std::move(out_signature),
                          {}, {}, std::move(callback)});
}

void DBusObject::add_signal(std::string interface, std::string name, std::string signature) {
    impl_->signals[{interface, name}] = signature;
    impl_->declare(Member{std::move(interface), std::move(name), std::move(signature), {}, {}, {}, {}});
}

void DBusObject::name_arguments(const std::string& interface, const std::string& member,
                                std::vector<std::string> in_names, std::vector<std::string> out_names) {
    if (impl_->published)
        throw std::logic_error(fmt::format("{}: name_arguments({}) after publish()", impl_->path, member));
    auto it = std::find_if(impl_->members.begin(), impl_->members.end(),
                           [&](const Member& m) { return m.interface == interface && m.name == member; });
    if (it == impl_->members.end())
        throw std::logic_error(fmt::format("{}: name_arguments: {}.{} is not declared", impl_->path, interface, member));
    auto check = [&](const std::vector<std::string>& names, const std::string& signature) {
        const auto n = split_signature(signature).size();
        if (!names.empty() && names.size() != n)
            throw std::invalid_argument(fmt::format("{}: {}.{}: {} names for the {} arguments of '{}'", impl_->path,
                                                    interface, member, names.size(), n, signature));
    };
    check(in_names, it->in);
    check(out_names, it->out);
    it->in_names = std::move(in_names);
    it->out_names = std::move(out_names);
}

void DBusObject::publish() {
    if (impl_->published) return;
    for (auto& m : impl_->members) {
        if (!m.callback) {
            if (m.in_names.empty()) impl_->object->registerSignal(m.interface, m.name, m.in);
            else impl_->object->registerSignal(m.interface, m.name, m.in, m.in_names);
        } else if (m.in_names.empty() && m.out_names.empty()) {
            impl_->object->registerMethod(m.interface, m.name, m.in, m.out, std::move(m.callback));
        } else {
            // sd-bus wants a name for every argument once any is named.
            auto fill = [](std::vector<std::string> names, const std::string& signature) {
                const auto n = split_signature(signature).size();
                for (std::size_t i = names.size(); i < n; ++i) names.push_back(fmt::format("arg{}", i));
                return names;
            };
            impl_->object->registerMethod(m.interface, m.name, m.in, fill(m.in_names, m.in), m.out,
                                          fill(m.out_names, m.out), std::move(m.callback));
        }
    }
    impl_->members.clear();
    impl_->object->finishRegistration();
    impl_->published = true;
}

void DBusObject::emit_signal(const std::string& interface, const std::string& name, const std::vector<Value>& args) {
    auto it = impl_->signals.find({interface, name});
    if (it == impl_->signals.end())
        throw std::logic_error(fmt::format("{}: emit_signal: {}.{} is not declared", impl_->path, interface, name));
    if (!impl_->published)
        throw std::logic_error(fmt::format("{}: emit_signal({}) before publish()", impl_->path, name));
    auto signal = impl_->object->createSignal(interface, name);
    write_arguments(signal, it->second, args);
    impl_->object->emitSignal(signal);
}

} // namespace moat
