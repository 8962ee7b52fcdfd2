#include "report.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

namespace moat::guard {

using critical::State;

State worst(std::span<const CheckRow> rows) {
    State w = State::ok;
    for (const CheckRow& r : rows) w = critical::worse(w, r.verdict.state);
    return w;
}

int exit_code(std::span<const CheckRow> rows) { return critical::alarm_level(worst(rows)); }

namespace {
std::size_t count(std::span<const CheckRow> rows, State s) {
    return static_cast<std::size_t>(std::count_if(rows.begin(), rows.end(), [s](auto& r) { return r.verdict.state == s; }));
}
std::string summary(std::span<const CheckRow> rows) {
    return fmt::format("{}: {} critical, {} warning, {} unknown, {} ok", critical::to_string(worst(rows)),
                       count(rows, State::critical), count(rows, State::warning), count(rows, State::unknown),
                       count(rows, State::ok));
}
} // namespace

std::string format_table(std::span<const CheckRow> rows) {
    std::size_t wn = 5, wv = 5, we = 8;
    for (const CheckRow& r : rows) {
        wn = std::max(wn, r.check->name.size());
        wv = std::max(wv, text(r.reading.value).size());
        we = std::max(we, r.check->expected.size());
    }
    std::string out = fmt::format("{:<{}}  {:<8}  {:<{}}  {:<{}}  {}\n", "CHECK", wn, "STATE", "VALUE", wv, "EXPECTED",
                                  we, "MEANING");
    for (const CheckRow& r : rows)
        out += fmt::format("{:<{}}  {:<8}  {:<{}}  {:<{}}  {}\n", r.check->name, wn, critical::to_string(r.verdict.state),
                           text(r.reading.value), wv, r.check->expected, we, r.verdict.text);
    return out + summary(rows) + "\n";
}

std::string json_value(const Value& v) {
    switch (v.kind()) {
    case Value::Kind::invalid: return "null";
    case Value::Kind::boolean: return v.as_bool() ? "true" : "false";
    case Value::Kind::integer: return std::to_string(v.as_int());
    case Value::Kind::floating: return std::isfinite(v.as_double()) ? python_float_repr(v.as_double()) : "null";
    default: return json_string(text(v));
    }
}

std::string format_json(std::span<const CheckRow> rows) {
    std::string out = fmt::format("{{\"worst\": {}, \"critical\": {}, \"warning\": {}, \"unknown\": {}, \"checks\": [",
                                  json_string(critical::to_string(worst(rows))), count(rows, State::critical),
                                  count(rows, State::warning), count(rows, State::unknown));
    bool first = true;
    for (const CheckRow& r : rows) {
        out += fmt::format("{}\n  {{\"name\": {}, \"state\": {}, \"value\": {}, \"expected\": {}, \"text\": {}, "
                           "\"service\": {}, \"path\": {}}}",
                           first ? "" : ",", json_string(r.check->name),
                           json_string(critical::to_string(r.verdict.state)), json_value(r.reading.value),
                           json_string(r.check->expected), json_string(r.verdict.text),
                           r.service.empty() ? "null" : json_string(r.service), json_string(r.check->path));
        first = false;
    }
    return out + "\n]}\n";
}

} // namespace moat::guard
