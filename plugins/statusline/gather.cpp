#include "gather.hpp"

#include <algorithm>
#include <chrono>
#include <fmt/format.h>

namespace moat::statusline {

namespace {

// Services without /DeviceInstance are ignored, as the original's DbusMonitor does (§8).
bool usable(const std::optional<ServiceInfo>& info) { return info && info->device_instance.has_value(); }

// Fill `device` (a SolarCharger, Battery, Vebus or System) from `service`.
template <class Device>
void fill(Monitor& monitor, const std::string& service, Device& device, const GatherOptions& options)
{
    bool frozen = false;
    if (options.max_age) {
        std::optional<Duration> newest;
        for (std::string_view path : Device::paths())
            if (auto age = monitor.age(service, path))
                newest = newest ? std::min(*newest, *age) : *age;
        frozen = newest && *newest > *options.max_age;
    }
    for (std::string_view path : Device::paths()) {
        Reading* reading = device.at(path);
        if (!monitor.seen(service, path)) {
            *reading = Reading::missing();
            continue;
        }
        Value v = monitor.value(service, path);
        *reading = frozen ? Reading::stale(std::move(v)) : Reading(std::move(v));
    }
}

constexpr std::string_view system_service = System::service;

// The vebus service system /VebusService names, if it is a usable service.
std::optional<std::string> named_vebus(const System& system)
{
    const Value& name = system.vebus_service.value();
    if (!name.is_string() || !pattern_matches("com.victronenergy", name.as_string()) ||
        name.as_string().size() <= std::string_view("com.victronenergy.").size())
        return std::nullopt;
    return name.as_string();
}

} // namespace

void follow(Monitor& monitor)
{
    for (std::string_view pattern : {charger_class, battery_class, vebus_class, system_service, Controller::service_class})
        monitor.watch(pattern);
}

bool have_system(Monitor& monitor) { return usable(monitor.service(system_service)); }

Snapshot gather(Monitor& monitor, const GatherOptions& options)
{
    follow(monitor);
    Snapshot s;
    for (const ServiceInfo& info : monitor.services(charger_class)) {
        if (!info.device_instance)
            continue;
        SolarCharger& c = s.chargers.emplace_back();
        c.service = info.name;
        fill(monitor, info.name, c, options);
    }
    for (const ServiceInfo& info : monitor.services(battery_class)) {
        if (!info.device_instance)
            continue;
        Battery& b = s.batteries.emplace_back();
        b.service = info.name;
        fill(monitor, info.name, b, options);
    }
    if (have_system(monitor)) {
        System& sys = s.system.emplace();
        fill(monitor, std::string(system_service), sys, options);
        // Re-resolved every tick (§7): a Multi that is replaced is followed.
        if (auto name = named_vebus(sys); name && usable(monitor.service(*name))) {
            Vebus& v = s.vebus.emplace();
            v.service = *name;
            fill(monitor, *name, v, options);
        }
    }
    for (const ServiceInfo& info : monitor.services(Controller::service_class)) {
        Controller& c = s.controller.emplace();
        c.service = info.name;
        fill(monitor, info.name, c, options);
        break;  // the first one: one controller is the rule
    }
    return s;
}

Task<std::optional<std::string>> wait_for_data(Loop& loop, Monitor& monitor, Duration timeout)
{
    follow(monitor);
    const TimePoint deadline = loop.clock().now() + timeout;
    for (;;) {
        std::optional<std::string> missing;
        if (monitor.calls_in_flight() > 0)
            missing = "the services on the bus were not all read yet";
        else if (!have_system(monitor))
            missing = fmt::format("no {} service (with a /DeviceInstance) on the bus", system_service);
        else {
            System sys;
            fill(monitor, std::string(system_service), sys, {});
            const Value& name = sys.vebus_service.value();
            if (name.is_string() && !name.as_string().empty()) {
                auto vebus = named_vebus(sys);
                if (!vebus)
                    missing = fmt::format("{} /VebusService names no Venus service: {:r}", system_service, name);
                else if (!usable(monitor.service(*vebus)))
                    missing = fmt::format("the vebus service {} that {} /VebusService names is not on the bus",
                                          *vebus, system_service);
            }
        }
        if (!missing)
            co_return std::nullopt;
        if (loop.clock().now() >= deadline)
            co_return missing;
        co_await sleep_for(std::chrono::milliseconds(50));
    }
}

} // namespace moat::statusline
