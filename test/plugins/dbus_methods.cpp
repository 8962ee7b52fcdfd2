// Exports /Test with org.moat.test.Methods through DBusObject on the host's
// connection: asynchronous methods (one that never answers on its own),
// struct arguments and results, a signal and named arguments, for clients
// outside the process (test_dbus_object.py).
#include <moat/dbus.hpp>
#include <moat/plugin.hpp>

namespace {
using namespace moat;
using Args = std::vector<Value>;

constexpr const char* iface = "org.moat.test.Methods";

class DBusMethods final : public Plugin {
public:
    explicit DBusMethods(Context& ctx) : ctx_(ctx), object_(ctx.bus, "/Test") {
        object_.add_async_method(iface, "Wait", "d", "s", [](Args a) -> Task<Args> {
            co_await sleep_for(std::chrono::duration_cast<Duration>(std::chrono::duration<double>(*a.at(0).as_number())));
            co_return Args{std::string("done")};
        });
        object_.name_arguments(iface, "Wait", {"seconds"}, {"result"});
        // Never answers by itself: only the object's end (the plugin stopping) ends it.
        // The logger is the closure's own copy: after Cancelled the plugin is gone.
        object_.add_async_method(iface, "Hang", "", "s", [log = ctx.log, this](Args) mutable -> Task<Args> {
            log.info("Hang: waiting");
            try {
                co_await never_.wait();
            } catch (const Cancelled&) {
                log.info("Hang: cancelled");
                throw;
            }
            co_return Args{std::string("never")};
        });
        object_.add_async_method(iface, "Fail", "", "b", [](Args) -> Task<Args> {
            co_await checkpoint();
            throw DBusError("org.moat.test.Error.Refused", "refused on purpose");
        });
        object_.add_method(iface, "Swap", "a(dd)", "a(dd)", [](const Args& a) {
            Value::List out;
            if (a.at(0).is_valid())
                for (const auto& pair : a.at(0).as_list()) out.emplace_back(Value::List{pair.as_list()[1], pair.as_list()[0]});
            return Args{Value(std::move(out))};
        });
        object_.add_method(iface, "Emit", "i", "b", [this](const Args& a) {
            object_.emit_signal(iface, "Ticked", {Value(Value::List{Value(Value::List{std::string("n"), a.at(0)})})});
            return Args{true};
        });
        object_.add_signal(iface, "Ticked", "a(si)");
        object_.name_arguments(iface, "Ticked", {"counts"});
        object_.publish();
    }

    Task<void> run() override {
        ctx_.log.info("methods on /Test");
        Event forever;
        co_await forever.wait();
    }

private:
    Context& ctx_;
    Event never_;
    DBusObject object_;
};

} // namespace

MOAT_PLUGIN(DBusMethods, "dbus_methods", "1.0", "test: DBusObject's methods, structs and signals", moat::detail::no_keys)
