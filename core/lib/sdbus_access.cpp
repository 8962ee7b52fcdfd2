#include "sdbus_access.hpp"
#include "value_dbus.hpp"

namespace moat::detail {

namespace {
// A derived class may name the protected members of sdbus::Message; the
// pointers to members it forms work on any Message.
struct Access : sdbus::MethodCall {
    Access(void* msg, sdbus::internal::ISdBus* iface) : sdbus::MethodCall(msg, iface) {}
    static void* raw(const sdbus::Message& m) { return m.*(&Access::msg_); }
    static sdbus::internal::ISdBus* iface(const sdbus::Message& m) { return m.*(&Access::sdbus_); }
};
} // namespace

sd_bus_message* raw_message(const sdbus::Message& msg) {
    return static_cast<sd_bus_message*>(Access::raw(msg));
}

sdbus::MethodCall adopt_call(sd_bus_message* call, const sdbus::Message& like) {
    Access a(call, Access::iface(like));  // takes a reference of its own
    return sdbus::MethodCall(static_cast<sdbus::MethodCall&&>(a));
}

std::string body_signature(const sdbus::Message& msg) {
    const char* sig = sd_bus_message_get_signature(raw_message(msg), 1);
    return sig ? sig : "";
}

std::vector<Value> read_arguments(sdbus::Message& msg, bool structs_as_lists) {
    std::vector<Value> out;
    sd_bus_message* m = raw_message(msg);
    for (;;) {
        char type = 0;
        const char* contents = nullptr;
        int r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0) throw std::invalid_argument("malformed D-Bus message body");
        if (r == 0) break;  // the end of the body
        std::string sig;
        if (type == SD_BUS_TYPE_ARRAY) sig = std::string("a") + contents;
        else if (type == SD_BUS_TYPE_STRUCT) sig = std::string("(") + contents + ")";
        else sig = std::string(1, type);  // a variant is "v" as well
        // A struct or fd (also inside a variant or array) has no Value: it is
        // skipped and read as invalid, so that the handler can refuse that
        // argument alone (AddSetting answers -6 for a struct default).
        const std::string inner = type == SD_BUS_TYPE_VARIANT && contents ? contents : sig;
        if (inner.find_first_of(structs_as_lists ? "h" : "(h") != std::string::npos) {
            if (sd_bus_message_skip(m, sig.c_str()) < 0) throw std::invalid_argument("malformed D-Bus message body");
            out.emplace_back();
            continue;
        }
        out.push_back(read_value(msg, sig, structs_as_lists));
    }
    return out;
}

} // namespace moat::detail
