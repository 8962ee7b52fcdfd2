// The service under test of the velib conformance probe
// (shared/conformance/README.md): exports catalogue.json with moat::Service.
//
//   conformance-service --catalogue catalogue.json [--name NAME] [--extra-paths N]
//
// Runs on the bus in DBUS_SESSION_BUS_ADDRESS (else the system bus), prints
// "ready NAME" on stdout once the name is owned, exits 3 with a message when
// the name is owned by somebody else, 0 on SIGTERM/SIGINT. --extra-paths adds
// N items /Extra/<k>/Value (for the large-service tests).
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>

#include <moat/service.hpp>
#include <moat/signal_watch.hpp>

#include "json.hpp"

using conformance::Json;
using moat::Value;

namespace {

/// A JSON value as a BusItem value, without a declared type.
Value to_value(const Json& j) {
    switch (j.type) {
    case Json::Type::null: return Value();
    case Json::Type::boolean: return Value(j.b);
    case Json::Type::integer: return Value(j.i);
    case Json::Type::number: return Value(j.d);
    case Json::Type::string: return Value(j.s);
    case Json::Type::array: {
        Value::List l;
        for (const auto& e : j.array) l.push_back(to_value(e));
        return Value(std::move(l));
    }
    case Json::Type::object: {
        Value::Dict d;
        for (const auto& [k, v] : j.object) d.emplace(k, to_value(v));
        return Value(std::move(d));
    }
    }
    return Value();
}

/// The initial value with the catalogue's D-Bus type letter.
Value typed_value(const Json* type, const Json& j) {
    if (!type || type->is_null() || j.is_null()) return Value();
    const std::string& t = type->s;
    if (t == "d") return Value(j.number());
    if (t == "i" || t == "x") return j.type == Json::Type::integer ? Value(j.i) : Value(static_cast<std::int64_t>(j.number()));
    if (t == "b") return Value(j.b);
    if (t == "s") return Value(j.s);
    if (t == "av" || t == "a{sv}") return to_value(j);
    throw std::runtime_error("unknown type \"" + t + "\" in the catalogue");
}

moat::ItemOptions options_of(const Json& entry) {
    moat::ItemOptions o;
    if (auto* w = entry.get("writeable")) o.writeable(w->b);
    if (auto* vt = entry.get("valuetype")) {
        if (vt->s == "int") o.type(moat::ValueType::integer);
        else if (vt->s == "float") o.type(moat::ValueType::floating);
        else if (vt->s == "str") o.type(moat::ValueType::string);
        else throw std::runtime_error("unknown valuetype " + vt->s);
    }
    if (auto* v = entry.get("validator")) {
        if (auto* r = v->get("range")) o.validator(moat::validate::range(r->array.at(0).number(), r->array.at(1).number()));
        else if (auto* e = v->get("enum")) {
            std::vector<Value> values;
            for (const auto& x : e->array) values.push_back(to_value(x));
            o.validator(moat::validate::one_of(std::move(values)));
        }
    }
    if (auto* t = entry.get("text")) {
        if (auto* p = t->get("printf")) o.text(moat::format::printf(p->s));
        else if (auto* e = t->get("enum")) {
            std::map<std::int64_t, std::string> table;
            for (const auto& [k, v] : e->object) table.emplace(std::stoll(k), v.s);
            const Json* d = t->get("default");
            o.text(moat::format::table(std::move(table), d ? d->s : ""));
        }
    }
    if (auto* d = entry.get("description")) o.description(d->s);
    return o;
}

/// Runs the numbered action of the catalogue (README: set, batch, batch_add,
/// batch_del_tree, add, delete).
void run_action(moat::Service& svc, const Json& action) {
    for (const auto& [kind, arg] : action.object) {
        if (kind == "about") continue;
        if (kind == "set") {
            for (const auto& [path, v] : arg.object) svc.set(path, to_value(v));
        } else if (kind == "batch") {
            auto batch = svc.batch();
            for (const auto& [path, v] : arg.object) svc.set(path, to_value(v));
        } else if (kind == "batch_add") {
            auto batch = svc.batch();
            for (const auto& [path, v] : arg.object) svc.add(path, to_value(v));
        } else if (kind == "batch_del_tree") {
            auto batch = svc.batch();
            svc.remove_tree(arg.s);
        } else if (kind == "add") {
            for (const auto& [path, v] : arg.object) svc.add(path, to_value(v));
        } else if (kind == "delete") {
            svc.remove(arg.s);
        } else {
            throw std::runtime_error("unknown action kind " + kind);
        }
    }
}

moat::Task<void> serve(moat::Service& svc, moat::Event& stop) {
    co_await svc.start();
    std::cout << "ready " << svc.name() << std::endl;
    co_await stop.wait();
    co_await svc.stop();
}

int usage() {
    std::cerr << "usage: conformance-service --catalogue FILE [--name NAME] [--extra-paths N]\n";
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::string catalogue_file, name;
    long extra = 0;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--catalogue" && i + 1 < argc) catalogue_file = argv[++i];
        else if (a == "--name" && i + 1 < argc) name = argv[++i];
        else if (a == "--extra-paths" && i + 1 < argc) extra = std::strtol(argv[++i], nullptr, 10);
        else return usage();
    }
    if (catalogue_file.empty()) return usage();

    Json catalogue;
    try {
        std::ifstream in(catalogue_file);
        if (!in) throw std::runtime_error("cannot read " + catalogue_file);
        std::stringstream text;
        text << in.rdbuf();
        catalogue = conformance::JsonParser(text.str()).parse();
    } catch (const std::exception& e) {
        std::cerr << "conformance-service: " << catalogue_file << ": " << e.what() << "\n";
        return 2;
    }
    if (name.empty()) {
        const Json* d = catalogue.get("default_name");
        name = d ? d->s : "com.victronenergy.battery.conformance";
    }

    moat::Loop loop;
    moat::Logger log("conformance-service");
    const std::string bus = std::getenv("DBUS_SESSION_BUS_ADDRESS") ? "session" : "system";
    try {
        moat::Service svc(loop, name, bus, log);
        svc.set_invalidate_on_stop(false);  // velib-identical: nothing is sent on leaving
        if (const Json* mandatory = catalogue.get("mandatory"))
            for (const auto& [path, entry] : mandatory->object) svc.add(path, typed_value(entry.get("type"), *entry.get("value")));
        const Json* actions = catalogue.get("actions");
        if (const Json* paths = catalogue.get("paths")) {
            for (const auto& entry : paths->array) {
                const std::string& path = entry.get("path")->s;
                auto options = options_of(entry);
                if (const Json* trigger = entry.get("trigger"); trigger && trigger->b) {
                    // Writing N runs action N, then the write is refused (2) and the value stays.
                    options.writeable().validator([&svc, actions](const Value& v) {
                        auto n = v.is_number() && !v.is_bool() ? v.as_number() : std::nullopt;
                        if (n && actions) {
                            const Json* action = actions->get(std::to_string(static_cast<long long>(*n)));
                            if (action) run_action(svc, *action);
                        }
                        return false;
                    });
                }
                svc.add(path, typed_value(entry.get("type"), *entry.get("value")), std::move(options));
            }
        }
        for (long k = 0; k < extra; ++k) svc.add("/Extra/" + std::to_string(k) + "/Value", Value(k), moat::ItemOptions().writeable());

        moat::Event stop;
        moat::SignalWatch term(loop, SIGTERM, [&](int) { stop.set(); });
        moat::SignalWatch intr(loop, SIGINT, [&](int) { stop.set(); });
        moat::run_until_complete(loop, serve(svc, stop));
    } catch (const moat::NameTakenError& e) {
        std::cerr << "conformance-service: cannot start: " << e.what() << "\n";
        return 3;
    } catch (const std::exception& e) {
        std::cerr << "conformance-service: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
