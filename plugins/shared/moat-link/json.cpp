#include "json.hpp"

#include <cmath>
#include <fmt/format.h>

namespace moat::bms {

std::string to_json(const msgpack::Value& v)
{
    using namespace msgpack;
    return std::visit(
        [](const auto& x) -> std::string {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, Nil> || std::is_same_v<T, Ext>) return "null";
            else if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
            else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>) return fmt::format("{}", x);
            else if constexpr (std::is_same_v<T, double>) return std::isfinite(x) ? fmt::format("{}", x) : "null";
            else if constexpr (std::is_same_v<T, std::string>) return json_string(x);
            else if constexpr (std::is_same_v<T, Bytes>) {
                std::string h;
                for (auto b : x) h += fmt::format("{:02x}", b);
                return json_string(h);
            } else if constexpr (std::is_same_v<T, Array>) {
                std::string out = "[";
                for (std::size_t i = 0; i < x.size(); ++i) out += (i ? "," : "") + to_json(x[i]);
                return out + "]";
            } else {
                std::string out = "{";
                for (std::size_t i = 0; i < x.size(); ++i) out += (i ? "," : "") + json_string(x[i].first) + ":" + to_json(x[i].second);
                return out + "}";
            }
        },
        v.v);
}

} // namespace moat::bms
