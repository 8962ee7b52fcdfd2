#include "command.hpp"
#include "control_interface.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "moat/dbus.hpp"
#include "moat/value.hpp"

namespace moat {

namespace {

constexpr std::string_view usage = R"(Talks to the inverter plugin's control interface org.m_o_a_t.inv.<NAME> on /Control.

  --name NAME                    the plugin's control name (default main)
  --json                         print JSON instead of text

Commands:
  state                          the controller's state (GetState)
  modes                          the modes (GetModes)
  mode-info MODE                 a mode's parameters (GetModeInfo)
  set-mode MODE [KEY=VALUE ...]  change the mode (SetMode); VALUE: a number, true, false or none
  set-param KEY VALUE            change a parameter of the running mode (SetModeParam)
)";

/// A value for people: booleans as yes/no, numbers rounded to what a reading
/// of that size needs (W and V to whole units or 0.1, fractions to 0.001).
/// The --json form keeps every digit.
std::string readable(const Value& v) {
    if (v.is_bool()) return v.as_bool() ? "yes" : "no";
    if (!v.is_double()) return text(v);
    double d = v.as_double();
    if (!std::isfinite(d)) return text(v);
    double a = std::fabs(d);
    std::string s = a >= 100 ? fmt::format("{:.0f}", d) : a >= 1 ? fmt::format("{:.1f}", d) : fmt::format("{:.3f}", d);
    return s == "-0" || s == "-0.0" || s == "-0.000" ? s.substr(1) : s;
}

/// Readable text: one "key: value" line per entry, nested dicts indented.
void print_text(const Value::Dict& d, int indent) {
    for (auto& [k, v] : d) {
        std::string pad(indent, ' ');
        if (k == "mode" && v.is_list() && v.as_list().size() == 2 && v.as_list()[1].is_dict()) {
            fmt::print("{}mode: {}\n", pad, readable(v.as_list()[0]));
            print_text(v.as_list()[1].as_dict(), indent + 2);
        } else if (v.is_dict()) {
            fmt::print("{}{}:\n", pad, k);
            print_text(v.as_dict(), indent + 2);
        } else if (k == "limits" && v.is_list()) {
            fmt::print("{}limits:\n", pad);
            for (auto& e : v.as_list()) {
                if (!e.is_dict()) continue;
                auto& ed = e.as_dict();
                auto get = [&](const char* key) { auto it = ed.find(key); return it == ed.end() ? std::string() : readable(it->second); };
                fmt::print("{}  {}: {} -> {} (res {})\n", pad, get("rule"), get("lim"), get("fix"), get("res"));
            }
        } else {
            fmt::print("{}{}: {}\n", pad, k, readable(v));
        }
    }
}

Value arg_value(const std::string& key, const std::string& s) {
    if (s == "none" || s == "None" || s == "null") return Value();
    if (s == "true" || s == "True") return Value(true);
    if (s == "false" || s == "False") return Value(false);
    try {
        std::size_t used = 0;
        double d = std::stod(s, &used);
        if (used == s.size()) return Value(d);
    } catch (const std::exception&) {
    }
    throw UsageError(fmt::format("{}: '{}' is not a number, true, false or none", key, s));
}

struct Request {
    std::string name = "main";
    bool as_json = false;
    std::vector<std::string> words;  ///< the command and its arguments
};

/// The names of the controllers on the bus ("main", ...).
Task<std::vector<std::string>> controller_names(CommandContext& ctx) {
    auto reply = co_await call_method(ctx.bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                      "ListNames", "", {}, std::chrono::seconds(5));
    std::vector<std::string> found;
    const std::string prefix = inverter::control::bus_name("");
    if (!reply.empty() && reply[0].is_list())
        for (auto& n : reply[0].as_list())
            if (n.is_string() && n.as_string().starts_with(prefix)) found.push_back(n.as_string().substr(prefix.size()));
    std::sort(found.begin(), found.end());
    co_return found;
}

Task<int> run_request(CommandContext& ctx, const Request& r);

/// run_request, but a controller that is not on the bus is exit 7 with the
/// names of those that are.
Task<int> run(CommandContext& ctx, const Request& r) {
    bool absent = false;
    try {
        co_return co_await run_request(ctx, r);
    } catch (const DBusError& e) {
        if (e.name() != "org.freedesktop.DBus.Error.ServiceUnknown" &&
            e.name() != "org.freedesktop.DBus.Error.NameHasNoOwner")
            throw;
        absent = true;
    }
    if (absent) {
        auto names = co_await controller_names(ctx);
        std::string list;
        for (auto& n : names) list += (list.empty() ? "" : ", ") + n;
        ctx.log.error("no controller named '{}' on the bus (found: {})", r.name, list.empty() ? "none" : list);
    }
    co_return command_no_data;
}

Task<int> run_request(CommandContext& ctx, const Request& r) {
    const std::string dest = inverter::control::bus_name(r.name);
    const auto& words = r.words;
    const std::string& cmd = words[0];
    const auto timeout = std::chrono::seconds(10);
    auto call = [&](const char* method, std::string signature = {}, std::vector<Value> args = {}) {
        return call_method(ctx.bus, dest, inverter::control::path, inverter::control::interface, method,
                           std::move(signature), std::move(args), timeout);
    };
    auto first = [](const std::vector<Value>& reply) { return reply.empty() ? Value() : reply.front(); };
    if (cmd == "state") {
        Value st = first(co_await call(inverter::control::get_state));
        if (r.as_json) fmt::print("{}\n", to_json(st.is_dict() ? st : Value(Value::Dict{})));
        else if (st.is_dict()) print_text(st.as_dict(), 0);
        co_return command_ok;
    }
    if (cmd == "modes") {
        Value modes = first(co_await call(inverter::control::get_modes));
        if (!modes.is_list()) modes = Value(Value::List{});
        if (r.as_json) fmt::print("{}\n", to_json(modes));
        else
            for (auto& m : modes.as_list()) fmt::print("{}\n", text(m));
        co_return command_ok;
    }
    if (cmd == "mode-info") {
        std::vector<Value> args{Value(words[1])};  // (no braced list inside co_await: g++ 12)
        Value info = first(co_await call(inverter::control::get_mode_info, "s", std::move(args)));
        Value::Dict d = info.is_dict() ? info.as_dict() : Value::Dict{};
        if (r.as_json) {
            fmt::print("{}\n", to_json(Value(d)));
        } else {
            if (auto it = d.find("_l"); it != d.end()) fmt::print("{}: {}\n", words[1], text(it->second));
            for (auto& [k, v] : d)
                if (k != "_l") fmt::print("  {:<14} {}\n", k, text(v));
        }
        co_return command_ok;
    }
    // (Arguments built first: no braced list inside co_await with g++ 12.)
    std::vector<Value> args{Value(words[1])};
    const char* method = inverter::control::set_mode_param;
    std::string signature = "sv";
    if (cmd == "set-mode") {
        Value::Dict params;
        for (std::size_t i = 2; i < words.size(); ++i) {
            auto eq = words[i].find('=');
            std::string key = words[i].substr(0, eq);
            params[key] = arg_value(key, words[i].substr(eq + 1));
        }
        args.emplace_back(std::move(params));
        method = inverter::control::set_mode;
        signature = "sa{sv}";
    } else {
        args.push_back(arg_value(words[1], words[2]));
    }
    std::vector<Value> reply = co_await call(method, std::move(signature), std::move(args));
    const Value ok_value = first(reply);
    const bool ok = ok_value.is_bool() && ok_value.as_bool();
    if (r.as_json) fmt::print("{}\n", ok ? "true" : "false");
    else fmt::print("{}\n", ok ? "OK" : "refused");
    co_return ok ? command_ok : command_failed;
}

CommandTask parse(const std::vector<std::string>& args) {
    Request r;
    ArgReader a(args);
    while (a.next()) {
        if (a.is("--name")) r.name = a.value();
        else if (a.flag("--json")) r.as_json = true;
        else if (a.arg().starts_with("--")) throw UsageError(a.unknown());
        else r.words.push_back(a.raw());
    }
    if (r.words.empty()) throw UsageError("which command?");
    const std::string& cmd = r.words[0];
    auto need = [&](std::size_t lo, std::size_t hi) {
        if (r.words.size() - 1 < lo || r.words.size() - 1 > hi)
            throw UsageError(fmt::format("wrong number of arguments for {}", cmd));
    };
    if (cmd == "state" || cmd == "modes") need(0, 0);
    else if (cmd == "mode-info") need(1, 1);
    else if (cmd == "set-mode") need(1, 1000);
    else if (cmd == "set-param") need(2, 2);
    else throw UsageError(fmt::format("unknown command '{}'", cmd));
    // Check every value before the bus is touched.
    if (cmd == "set-mode")
        for (std::size_t i = 2; i < r.words.size(); ++i) {
            auto eq = r.words[i].find('=');
            if (eq == std::string::npos || eq == 0)
                throw UsageError(fmt::format("'{}': expected KEY=VALUE", r.words[i]));
            arg_value(r.words[i].substr(0, eq), r.words[i].substr(eq + 1));
        }
    if (cmd == "set-param") arg_value(r.words[1], r.words[2]);
    return [r](CommandContext& ctx) { return run(ctx, r); };
}

} // namespace

const ClientCommand inverter_command{
    "inverter",
    "control the inverter plugin: state, modes, mode-info, set-mode, set-param",
    usage,
    parse,
};

} // namespace moat
