// GetItems replies and BusItem change signals read into Values (see busitem_read.hpp).
#include "busitem_read.hpp"

#include <cstring>

#include "sdbus_access.hpp"
#include "value_dbus.hpp"
#include "value_wire.hpp"

namespace moat::detail {

namespace {

using Attributes = std::map<std::string, sdbus::Variant>;
using ItemMap = std::map<std::string, Attributes>;

std::optional<std::string> variant_string(const sdbus::Variant& v) {
    if (v.containsValueOfType<std::string>()) return v.get<std::string>();
    return std::nullopt;
}

/// One entry of GetItems/ItemsChanged or the body of PropertiesChanged.
/// Entries without a decodable Value are skipped (§10.4).
std::optional<BusItemEntry> decode_entry(const Attributes& attrs) {
    auto v = attrs.find("Value");
    if (v == attrs.end()) return std::nullopt;
    Value value;
    try {
        value = from_variant(v->second);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    std::optional<std::string> text;
    if (auto t = attrs.find("Text"); t != attrs.end()) text = variant_string(t->second);
    return std::make_pair(std::move(value), std::move(text));
}

/// Reads an `a{sv}` of attributes (Value, Text) at the read position; throws on anything unusual.
std::optional<BusItemEntry> read_attributes(sd_bus_message* m) {
    std::optional<Value> value;
    std::optional<std::string> text;
    wire::check(sd_bus_message_enter_container(m, 'a', "{sv}"), "attributes");
    while (wire::check(sd_bus_message_at_end(m, 0), "attributes") == 0) {
        const char* key = nullptr;
        wire::check(sd_bus_message_enter_container(m, 'e', "sv"), "attributes");
        wire::check(sd_bus_message_read_basic(m, 's', &key), "attributes");
        if (!std::strcmp(key, "Value")) {
            value = wire::read_variant(m);
        } else if (!std::strcmp(key, "Text") && sd_bus_message_verify_type(m, 'v', "s") > 0) {
            const char* str = nullptr;
            wire::check(sd_bus_message_read(m, "v", "s", &str), "attributes");
            text = str;
        } else {
            wire::check(sd_bus_message_skip(m, "v"), "attributes");
        }
        wire::check(sd_bus_message_exit_container(m), "attributes");
    }
    wire::check(sd_bus_message_exit_container(m), "attributes");
    if (!value) return std::nullopt;
    return BusItemEntry{std::move(*value), std::move(text)};
}

} // namespace

bool read_items(sdbus::Message& msg, std::vector<std::pair<std::string, BusItemEntry>>& out) {
    sd_bus_message* m = detail::raw_message(msg);
    const char* sig = sd_bus_message_get_signature(m, 1);
    if (!sig || std::strcmp(sig, "a{sa{sv}}") != 0) return false;
    try {
        wire::check(sd_bus_message_enter_container(m, 'a', "{sa{sv}}"), "items");
        while (wire::check(sd_bus_message_at_end(m, 0), "items") == 0) {
            const char* path = nullptr;
            wire::check(sd_bus_message_enter_container(m, 'e', "sa{sv}"), "items");
            wire::check(sd_bus_message_read_basic(m, 's', &path), "items");
            std::string p = path;
            if (auto e = read_attributes(m)) out.emplace_back(std::move(p), std::move(*e));
            wire::check(sd_bus_message_exit_container(m), "items");
        }
        return true;
    } catch (const std::exception&) {
        out.clear();
    }
    sd_bus_message_rewind(m, 1);
    ItemMap items;
    try {
        msg >> items;
    } catch (const sdbus::Error&) {
        return false;
    }
    for (auto& [path, attrs] : items)
        if (auto entry = decode_entry(attrs)) out.emplace_back(path, std::move(*entry));
    return true;
}

std::optional<BusItemEntry> read_properties(sdbus::Message& msg) {
    sd_bus_message* m = detail::raw_message(msg);
    const char* sig = sd_bus_message_get_signature(m, 1);
    if (!sig || std::strcmp(sig, "a{sv}") != 0) return std::nullopt;
    try {
        return read_attributes(m);
    } catch (const std::exception&) {
    }
    sd_bus_message_rewind(m, 1);
    Attributes attrs;
    try {
        msg >> attrs;
    } catch (const sdbus::Error&) {
        return std::nullopt;
    }
    return decode_entry(attrs);
}

} // namespace moat::detail
