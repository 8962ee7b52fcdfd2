#include "reading.hpp"
#include <moat/dbus.hpp>

#include <cstdlib>

#include <moat/service.hpp>
#include <moat/value.hpp>

namespace moat::guard {

using critical::Reading;
using critical::Role;

std::string role_class(Role role) {
    switch (role) {
    case Role::settings: return settings_service;
    case Role::system: return system_service;
    case Role::vebus: return "com.victronenergy.vebus";
    case Role::battery: return "com.victronenergy.battery";
    }
    return settings_service;
}

void follow(Monitor& monitor) {
    for (Role r : {Role::settings, Role::system, Role::vebus, Role::battery}) monitor.watch(role_class(r));
}

namespace {
/// A service systemcalc names: a full name, or "class/instance".
std::string named_service(Monitor& monitor, const std::string& name) {
    if (auto slash = name.find('/'); slash != std::string::npos) {
        std::string cls = name.substr(0, slash);
        char* end = nullptr;
        long inst = std::strtol(name.c_str() + slash + 1, &end, 10);
        if (end == name.c_str() + slash + 1 || *end != '\0') return "";
        monitor.watch(cls);
        auto s = monitor.find_by_instance(cls, inst);
        return s ? s->name : std::string();
    }
    return name;
}
} // namespace

std::string service_for(Monitor& monitor, Role role) {
    if (role == Role::settings || role == Role::system) return role_class(role);
    const char* path = role == Role::vebus ? "/VebusService" : "/Dc/Battery/BatteryService";
    Value named = monitor.value(system_service, path);
    if (named.is_string() && !named.as_string().empty()) {
        std::string s = named_service(monitor, named.as_string());
        if (!s.empty()) return s;
    }
    auto all = monitor.services(role_class(role));
    return all.empty() ? std::string() : all.front().name;
}

Task<Reading> read_now(Bus& bus, std::string service, std::string path, Duration timeout) {
    if (service.empty()) co_return Reading{};
    Reading r;
    try {
        auto reply = co_await call_method(bus, service, path, busitem_interface, "GetValue", "", {}, timeout);
        r.present = true;
        r.value = reply.empty() ? Value() : reply.front();
    } catch (const DBusError&) {
        r = Reading{};  // no such service or path, or no answer: unknown
    } catch (const std::invalid_argument&) {
        r = Reading{true, Value()};  // an answer we cannot decode
    }
    co_return r;
}

critical::Facts facts_from(const Reading& bms, double planned_export) {
    critical::Facts f;
    f.planned_export = planned_export;
    if (const auto* c = critical::find_check("BmsChargeVoltage");
        c && critical::evaluate(*c, bms).state == critical::State::ok)
        f.bms_charge_voltage = bms.value.as_number();
    return f;
}

} // namespace moat::guard
