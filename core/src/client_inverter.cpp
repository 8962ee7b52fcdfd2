#include "client_inverter.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <sdbus-c++/sdbus-c++.h>

#include "moat/value.hpp"

namespace moat {

namespace {

const char* usage = R"(Usage: moat-victron inverter [--bus BUS] [--name NAME] [--json] COMMAND

Talks to the inverter plugin's control interface org.m_o_a_t.inv.<NAME>
(default main) on /Control, on BUS ("system" (default), "session" or an address).

Commands:
  state                          the controller's state (GetState)
  modes                          the modes (GetModes)
  mode-info MODE                 a mode's parameters (GetModeInfo)
  set-mode MODE [KEY=VALUE ...]  change the mode (SetMode); VALUE: a number, true, false or none
  set-param KEY VALUE            change a parameter of the running mode (SetModeParam)
)";

struct Fail {
    std::string message;
    int code;
};

std::string json_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) out += fmt::format("\\u{:04x}", c);
            else out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string json(const Value& v) {
    switch (v.kind()) {
    case Value::Kind::invalid: return "null";
    case Value::Kind::boolean: return v.as_bool() ? "true" : "false";
    case Value::Kind::integer: return std::to_string(v.as_int());
    case Value::Kind::floating: return std::isfinite(v.as_double()) ? python_float_repr(v.as_double()) : "null";
    case Value::Kind::string: return json_string(v.as_string());
    case Value::Kind::list: {
        std::string s = "[";
        for (auto& x : v.as_list()) s += (s.size() > 1 ? ", " : "") + json(x);
        return s + "]";
    }
    case Value::Kind::dict: {
        std::string s = "{";
        for (auto& [k, x] : v.as_dict()) s += (s.size() > 1 ? ", " : "") + json_string(k) + ": " + json(x);
        return s + "}";
    }
    }
    return "null";
}

/// Readable text: one "key: value" line per entry, nested dicts indented.
void print_text(const Value::Dict& d, int indent) {
    for (auto& [k, v] : d) {
        std::string pad(indent, ' ');
        if (k == "mode" && v.is_list() && v.as_list().size() == 2 && v.as_list()[1].is_dict()) {
            fmt::print("{}mode: {}\n", pad, text(v.as_list()[0]));
            print_text(v.as_list()[1].as_dict(), indent + 2);
        } else if (v.is_dict()) {
            fmt::print("{}{}:\n", pad, k);
            print_text(v.as_dict(), indent + 2);
        } else if (k == "limits" && v.is_list()) {
            fmt::print("{}limits:\n", pad);
            for (auto& e : v.as_list()) {
                if (!e.is_dict()) continue;
                auto& ed = e.as_dict();
                auto get = [&](const char* key) { auto it = ed.find(key); return it == ed.end() ? std::string() : text(it->second); };
                fmt::print("{}  {}: {} -> {} (res {})\n", pad, get("rule"), get("lim"), get("fix"), get("res"));
            }
        } else {
            fmt::print("{}{}: {}\n", pad, k, text(v));
        }
    }
}

sdbus::Variant arg_value(const std::string& key, const std::string& s) {
    if (s == "none" || s == "None" || s == "null") return sdbus::Variant(std::vector<std::int32_t>{});
    if (s == "true" || s == "True") return sdbus::Variant(true);
    if (s == "false" || s == "False") return sdbus::Variant(false);
    try {
        std::size_t used = 0;
        double d = std::stod(s, &used);
        if (used == s.size()) return sdbus::Variant(d);
    } catch (const std::exception&) {
    }
    throw Fail{fmt::format("{}: '{}' is not a number, true, false or none", key, s), 2};
}

std::unique_ptr<sdbus::IConnection> connect(const std::string& bus) {
    try {
        if (bus == "system") return sdbus::createSystemBusConnection();
        if (bus == "session") return sdbus::createSessionBusConnection();
        return sdbus::createSessionBusConnectionWithAddress(bus);
    } catch (const sdbus::Error& e) {
        throw Fail{fmt::format("cannot reach the {} bus: {}", bus, e.getMessage()), 4};
    }
}

} // namespace

int inverter_client(int argc, char** argv) {
    std::string bus = "system", name = "main";
    bool as_json = false;
    std::vector<std::string> words;
    try {
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            auto value = [&]() -> std::string {
                if (i + 1 >= argc) throw Fail{a + " needs a value", 2};
                return argv[++i];
            };
            if (a == "--bus") bus = value();
            else if (a == "--name") name = value();
            else if (a == "--json") as_json = true;
            else if (a == "--help" || a == "-h") {
                fmt::print("{}", usage);
                return 0;
            } else if (a.starts_with("--")) throw Fail{fmt::format("unknown option '{}'", a), 2};
            else words.push_back(a);
        }
        if (words.empty()) throw Fail{"which command?", 2};
        const std::string& cmd = words[0];
        auto need = [&](std::size_t lo, std::size_t hi) {
            if (words.size() - 1 < lo || words.size() - 1 > hi) throw Fail{fmt::format("wrong number of arguments for {}", cmd), 2};
        };
        if (cmd == "state" || cmd == "modes") need(0, 0);
        else if (cmd == "mode-info") need(1, 1);
        else if (cmd == "set-mode") need(1, 1000);
        else if (cmd == "set-param") need(2, 2);
        else throw Fail{fmt::format("unknown command '{}'", cmd), 2};

        auto conn = connect(bus);
        auto proxy = sdbus::createProxy(*conn, "org.m_o_a_t.inv." + name, "/Control");
        const char* iface = "org.m_o_a_t.inv";
        const auto timeout = std::chrono::seconds(10);
        Value result;
        if (cmd == "state") {
            std::map<std::string, sdbus::Variant> st;
            proxy->callMethod("GetState").onInterface(iface).withTimeout(timeout).storeResultsTo(st);
            Value::Dict d;
            for (auto& [k, v] : st) d[k] = from_variant(v);
            if (as_json) fmt::print("{}\n", json(Value(d)));
            else print_text(d, 0);
            return 0;
        }
        if (cmd == "modes") {
            std::vector<std::string> modes;
            proxy->callMethod("GetModes").onInterface(iface).withTimeout(timeout).storeResultsTo(modes);
            Value::List l;
            for (auto& m : modes) l.emplace_back(m);
            if (as_json) fmt::print("{}\n", json(Value(l)));
            else
                for (auto& m : modes) fmt::print("{}\n", m);
            return 0;
        }
        if (cmd == "mode-info") {
            std::map<std::string, std::string> info;
            proxy->callMethod("GetModeInfo").onInterface(iface).withTimeout(timeout).withArguments(words[1]).storeResultsTo(info);
            if (as_json) {
                Value::Dict d;
                for (auto& [k, v] : info) d[k] = v;
                fmt::print("{}\n", json(Value(d)));
            } else {
                if (auto it = info.find("_l"); it != info.end()) fmt::print("{}: {}\n", words[1], it->second);
                for (auto& [k, v] : info)
                    if (k != "_l") fmt::print("  {:<14} {}\n", k, v);
            }
            return 0;
        }
        bool ok = false;
        if (cmd == "set-mode") {
            std::map<std::string, sdbus::Variant> args;
            for (std::size_t i = 2; i < words.size(); ++i) {
                auto eq = words[i].find('=');
                if (eq == std::string::npos || eq == 0) throw Fail{fmt::format("'{}': expected KEY=VALUE", words[i]), 2};
                std::string key = words[i].substr(0, eq);
                args[key] = arg_value(key, words[i].substr(eq + 1));
            }
            proxy->callMethod("SetMode").onInterface(iface).withTimeout(timeout).withArguments(words[1], args).storeResultsTo(ok);
        } else {
            sdbus::Variant v = arg_value(words[1], words[2]);
            proxy->callMethod("SetModeParam").onInterface(iface).withTimeout(timeout).withArguments(words[1], v).storeResultsTo(ok);
        }
        if (as_json) fmt::print("{}\n", ok ? "true" : "false");
        else fmt::print("{}\n", ok ? "OK" : "refused");
        return ok ? 0 : 1;
    } catch (const Fail& f) {
        fmt::print(stderr, "moat-victron inverter: {}\n", f.message);
        if (f.code == 2) fmt::print(stderr, "Try 'moat-victron inverter --help'.\n");
        return f.code;
    } catch (const sdbus::Error& e) {
        fmt::print(stderr, "moat-victron inverter: {}: {}\n", e.getName(), e.getMessage());
        return 1;
    } catch (const std::exception& e) {
        fmt::print(stderr, "moat-victron inverter: {}\n", e.what());
        return 1;
    }
}

} // namespace moat
