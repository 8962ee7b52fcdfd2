#include "moat/fault.hpp"

#include <cctype>
#include <charconv>

#include <fmt/format.h>

namespace moat {

namespace {

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

bool valid_name(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.')) return false;
    return true;
}

} // namespace

FaultPoints::FaultPoints(std::string_view spec) {
    while (!spec.empty()) {
        auto comma = spec.find(',');
        std::string_view part = trim(spec.substr(0, comma));
        spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
        if (part.empty()) continue;
        auto bad = [&](std::string_view why) {
            return std::invalid_argument(fmt::format("fault point '{}': {} (expected INSTANCE:POINT or INSTANCE:POINT@N)", part, why));
        };
        auto colon = part.find(':');
        if (colon == std::string_view::npos) throw bad("no ':'");
        Entry e;
        e.instance = std::string(part.substr(0, colon));
        std::string_view point = part.substr(colon + 1);
        if (auto at = point.find('@'); at != std::string_view::npos) {
            std::string_view n = point.substr(at + 1);
            point = point.substr(0, at);
            auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), e.at);
            if (ec != std::errc() || end != n.data() + n.size() || e.at == 0) throw bad("the pass after '@' must be a number >= 1");
        }
        e.point = std::string(point);
        if (!valid_name(e.instance)) throw bad("bad instance name");
        if (!valid_name(e.point)) throw bad("bad point name");
        entries_.push_back(std::move(e));
    }
}

void FaultPoints::pass(std::string_view instance, std::string_view point) {
    for (auto& e : entries_) {
        if (e.instance != instance || e.point != point || e.seen >= e.at) continue;
        if (++e.seen == e.at)
            throw InjectedFault(fmt::format("injected fault at {}:{} (pass {}, MOAT_FAULT)", instance, point, e.at));
    }
}

std::string FaultPoints::describe() const {
    std::string s;
    for (auto& e : entries_) s += fmt::format("{}{}:{}@{}", s.empty() ? "" : ", ", e.instance, e.point, e.at);
    return s;
}

} // namespace moat
