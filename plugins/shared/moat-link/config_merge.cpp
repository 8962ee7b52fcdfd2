#include "config_merge.hpp"

namespace moat::bms {

using msgpack::Value;

namespace {

bool is_delete(const Value& v) { return v.str() && *v.str() == "-"; }

void merge(Value& tree, const Value& delta, const std::string* replace_key, std::size_t depth)
{
    const auto* d = delta.map();
    // Bounded like the decoder: a delta deeper than it could not have arrived.
    if (!d || depth > 64) {
        tree = delta;
        return;
    }
    if (!tree.is_map()) tree = Value(msgpack::Map{});
    auto& m = *tree.map();
    for (const auto& entry : *d) {
        const std::string& k = entry.first;
        const Value& v = entry.second;
        if (is_delete(v)) {
            std::erase_if(m, [&](const auto& e) { return e.first == k; });
            continue;
        }
        Value* cur = nullptr;
        for (auto& e : m)
            if (e.first == k) cur = &e.second;
        if (!cur) cur = &tree.set(k, Value());
        if (v.is_map() && !(replace_key && k == *replace_key)) merge(*cur, v, nullptr, depth + 1);
        else *cur = v;
    }
}

} // namespace

void merge_config(Value& tree, const Value& delta, const std::string& replace_key)
{
    merge(tree, delta, &replace_key, 0);
}

const Value* config_at(const Value& tree, std::string_view dotted)
{
    const Value* cur = &tree;
    while (cur) {
        const auto dot = dotted.find('.');
        cur = cur->find(dotted.substr(0, dot));
        if (dot == std::string_view::npos) return cur;
        dotted.remove_prefix(dot + 1);
    }
    return nullptr;
}

Value config_delta(std::string_view dotted, Value value)
{
    for (;;) {  // innermost key first
        const auto dot = dotted.rfind('.');
        Value up(msgpack::Map{});
        up.set(std::string(dotted.substr(dot == std::string_view::npos ? 0 : dot + 1)), std::move(value));
        value = std::move(up);
        if (dot == std::string_view::npos) return value;
        dotted = dotted.substr(0, dot);
    }
}

} // namespace moat::bms
