// moat::Value on sd-bus messages directly (see value_wire.hpp for why).
#include "value_wire.hpp"

#include <fmt/format.h>

#include <cstring>
#include <limits>
#include <stdexcept>

namespace moat::wire {

void fail(int r, const char* what) {
    throw std::runtime_error(fmt::format("D-Bus message {}: {}", what, std::strerror(-r)));
}

int append_variant(sd_bus_message* m, const Value& value) {
    switch (value.kind()) {
    case Value::Kind::invalid: return sd_bus_message_append(m, "v", "ai", 0u);
    case Value::Kind::boolean: return sd_bus_message_append(m, "v", "b", int(value.as_bool()));
    case Value::Kind::integer: {
        const std::int64_t i = value.as_int();
        if (i >= std::numeric_limits<std::int32_t>::min() && i <= std::numeric_limits<std::int32_t>::max())
            return sd_bus_message_append(m, "v", "i", static_cast<std::int32_t>(i));
        return sd_bus_message_append(m, "v", "x", i);
    }
    case Value::Kind::floating: return sd_bus_message_append(m, "v", "d", value.as_double());
    case Value::Kind::string: return sd_bus_message_append(m, "v", "s", value.as_string().c_str());
    case Value::Kind::list: {
        const auto& list = value.as_list();
        if (list.empty()) return sd_bus_message_append(m, "v", "au", 0u);  // not `ai`: that reads as invalid
        int r = sd_bus_message_open_container(m, 'v', "av");
        if (r >= 0) r = sd_bus_message_open_container(m, 'a', "v");
        for (const auto& item : list)
            if (r >= 0) r = append_variant(m, item);
        if (r >= 0) r = sd_bus_message_close_container(m);
        if (r >= 0) r = sd_bus_message_close_container(m);
        return r;
    }
    case Value::Kind::dict: {
        int r = sd_bus_message_open_container(m, 'v', "a{sv}");
        if (r >= 0) r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (const auto& [key, item] : value.as_dict()) {
            if (r >= 0) r = sd_bus_message_open_container(m, 'e', "sv");
            if (r >= 0) r = sd_bus_message_append(m, "s", key.c_str());
            if (r >= 0) r = append_variant(m, item);
            if (r >= 0) r = sd_bus_message_close_container(m);
        }
        if (r >= 0) r = sd_bus_message_close_container(m);
        if (r >= 0) r = sd_bus_message_close_container(m);
        return r;
    }
    }
    return -EINVAL;
}

namespace {

[[noreturn]] void unsupported(const std::string& what) {
    throw std::invalid_argument(fmt::format("unsupported D-Bus type {} in a BusItem value", what));
}

void need(int r) {
    if (r < 0) throw std::invalid_argument(fmt::format("malformed D-Bus value: {}", std::strerror(-r)));
}

template <class T> T basic(sd_bus_message* m, char type) {
    T x{};
    need(sd_bus_message_read_basic(m, type, &x));
    return x;
}

bool need_at_end(sd_bus_message* m) {
    const int r = sd_bus_message_at_end(m, 0);
    need(r);
    return r > 0;
}

Value read_current(sd_bus_message* m, int depth);

Value read_array(sd_bus_message* m, const char* contents, int depth) {
    need(sd_bus_message_enter_container(m, 'a', contents));
    Value result;
    if (contents[0] == '{') {
        const char key = contents[1];
        Value::Dict dict;
        while (!need_at_end(m)) {
            if (key != 's' && key != 'o' && key != 'g') unsupported(fmt::format("dict key '{}' (only string keys)", key));
            char t;
            const char* entry;
            need(sd_bus_message_peek_type(m, &t, &entry));
            need(sd_bus_message_enter_container(m, 'e', entry));
            std::string k = basic<const char*>(m, key);
            Value item = read_current(m, depth + 1);
            need(sd_bus_message_exit_container(m));
            dict.insert_or_assign(std::move(k), std::move(item));
        }
        result = Value(std::move(dict));  // an empty dict too: it is no array (dbus-python)
    } else {
        Value::List list;
        while (!need_at_end(m)) list.push_back(read_current(m, depth + 1));
        if (!list.empty()) result = Value(std::move(list));  // any empty array is invalid
    }
    need(sd_bus_message_exit_container(m));
    return result;
}

Value read_current(sd_bus_message* m, int depth) {
    if (depth > 64) throw std::invalid_argument("D-Bus value nested too deeply");
    char type = 0;
    const char* contents = nullptr;
    need(sd_bus_message_peek_type(m, &type, &contents));
    switch (type) {
    case 'y': return basic<std::uint8_t>(m, type);
    case 'b': return Value(basic<int>(m, type) != 0);
    case 'n': return basic<std::int16_t>(m, type);
    case 'q': return basic<std::uint16_t>(m, type);
    case 'i': return basic<std::int32_t>(m, type);
    case 'u': return basic<std::uint32_t>(m, type);
    case 'x': return basic<std::int64_t>(m, type);
    case 't': {
        const std::uint64_t u = basic<std::uint64_t>(m, type);
        if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            throw std::invalid_argument(fmt::format("D-Bus value {} (type 't') does not fit in int64", u));
        return static_cast<std::int64_t>(u);
    }
    case 'd': return basic<double>(m, type);
    case 's': case 'o': case 'g': return std::string(basic<const char*>(m, type));
    case 'v': {
        need(sd_bus_message_enter_container(m, 'v', contents));
        Value v = read_current(m, depth + 1);  // v(v(i 12)) flattens to 12
        need(sd_bus_message_exit_container(m));
        return v;
    }
    case 'a': return read_array(m, contents, depth);
    case 'h': unsupported("unix fd 'h'");
    case 'r': unsupported(fmt::format("struct '({})'", contents ? contents : ""));
    default: unsupported(fmt::format("'{}'", type ? type : '?'));
    }
}

} // namespace

Value read_variant(sd_bus_message* m) {
    char type = 0;
    const char* contents = nullptr;
    need(sd_bus_message_peek_type(m, &type, &contents));
    if (type != 'v') throw std::invalid_argument("malformed D-Bus value (no variant)");
    return read_current(m, 0);
}

} // namespace moat::wire
