#include "bms_client.hpp"

#include <cmath>
#include <stdexcept>

#include <fmt/format.h>
#include <moat/dbus.hpp>

#include "supervisor.hpp"

namespace moat::inverter {

namespace {

constexpr const char* bus_driver = "org.freedesktop.DBus";

double number_in(const Value::Dict& d, const char* key, const std::string& where) {
    auto it = d.find(key);
    std::optional<double> n = it != d.end() ? it->second.as_number() : std::nullopt;
    if (!n || !std::isfinite(*n)) throw std::invalid_argument(fmt::format("{}: no number at '{}'", where, key));
    return *n;
}

} // namespace

Task<std::string> BmsClient::owner() {
    std::vector<Value> args{Value(service_)};
    auto reply = co_await call_method(bus_, bus_driver, "/org/freedesktop/DBus", bus_driver, "GetNameOwner", "s",
                                      std::move(args), call_timeout);
    co_return reply.empty() || !reply[0].is_string() ? std::string() : reply[0].as_string();
}

Task<void> BmsClient::connect() {
    const std::string needs = "analyze needs the MoaT BMS (the org.m_o_a_t.bms interface on the battery service; "
                              "[inverter] bms_service names another service)";
    try {
        owner_ = co_await owner();
    } catch (const DBusError& e) {
        throw std::runtime_error(fmt::format("the battery service {} is not on the bus ({}); {}", service_,
                                             e.message(), needs));
    }
    std::string xml;
    try {
        auto reply = co_await call_method(bus_, service_, "/bms", "org.freedesktop.DBus.Introspectable",
                                          "Introspect", "", {}, call_timeout);
        if (!reply.empty() && reply[0].is_string()) xml = reply[0].as_string();
    } catch (const DBusError& e) {
        throw std::runtime_error(fmt::format("the battery service {} has no object /bms ({}); {}", service_,
                                             e.message(), needs));
    }
    if (xml.find(fmt::format("\"{}\"", interface)) == std::string::npos)
        throw std::runtime_error(
            fmt::format("the battery service {} has no {} interface on /bms; {}", service_, interface, needs));
    std::vector<Value> reply;
    try {
        reply = co_await call_method(bus_, service_, "/bms", interface, "GetNBatteries", "", {}, call_timeout);
    } catch (const DBusError& e) {
        throw std::runtime_error(fmt::format("the MoaT BMS on {} does not answer GetNBatteries: {}", service_, e.what()));
    }
    auto n = reply.empty() ? std::nullopt : reply[0].as_number();
    if (!n || *n < 1)
        throw std::runtime_error(fmt::format("the MoaT BMS on {} reports no battery (GetNBatteries {})", service_,
                                             reply.empty() ? std::string("nothing") : text(reply[0])));
}

Task<std::vector<Value>> BmsClient::call(const char* path, const char* method, std::string signature,
                                         std::vector<Value> args) {
    try {
        auto reply = co_await call_method(bus_, service_, path, interface, method, std::move(signature),
                                          std::move(args), call_timeout);
        co_return reply;
    } catch (const DBusError& e) {
        throw ModeAbort(fmt::format("the MoaT BMS on {}: {} {} failed: {}", service_, path, method, e.what()));
    }
}

const Value::Dict& BmsClient::battery0(const std::vector<Value>& reply, const char* method) const {
    if (reply.empty() || !reply[0].is_list() || reply[0].as_list().empty() || !reply[0].as_list()[0].is_dict())
        throw ModeAbort(fmt::format("the MoaT BMS on {}: {} gave no entry for battery 0", service_, method));
    return reply[0].as_list()[0].as_dict();
}

Task<CellLimits> BmsClient::limits() {
    auto reply = co_await call("/bms", "GetConfig");
    try {
        co_return cell_limits(reply.empty() ? Value() : reply[0]);
    } catch (const std::invalid_argument& e) {
        throw ModeAbort(fmt::format("the MoaT BMS on {}: {}", service_, e.what()));
    }
}

Task<CellVoltages> BmsClient::voltages() {
    auto reply = co_await call("/bms", "GetVoltages");
    const auto& b = battery0(reply, "GetVoltages");
    try {
        const std::string where = "GetVoltages of battery 0";
        CellVoltages v{number_in(b, "min_cell", where), number_in(b, "max_cell", where)};
        if (!(v.min_cell > 0 && v.min_cell <= v.max_cell))
            throw std::invalid_argument(fmt::format("{}: implausible cells min {} max {}", where, v.min_cell, v.max_cell));
        co_return v;
    } catch (const std::invalid_argument& e) {
        throw ModeAbort(fmt::format("the MoaT BMS on {}: {}", service_, e.what()));
    }
}

Task<Work> BmsClient::work(bool poll, bool clear) {
    // A clear starts new records on the BMS (its SoC model too): not in fake mode.
    std::vector<Value> args{Value(poll), Value(clear && !fake_)};
    auto reply = co_await call("/bms", "GetWork", "bb", std::move(args));
    const auto& b = battery0(reply, "GetWork");
    Work w;
    try {
        const std::string where = "GetWork of battery 0";
        w = Work{number_in(b, "chg", where), number_in(b, "dis", where)};
    } catch (const std::invalid_argument& e) {
        throw ModeAbort(fmt::format("the MoaT BMS on {}: {}", service_, e.what()));
    }
    if (!fake_) co_return w;
    Work since{w.chg - baseline_.chg, w.dis - baseline_.dis};
    if (clear) baseline_ = w;
    co_return since;
}

Task<bool> BmsClient::set_capacity(double cap, double loss, bool top) {
    if (fake_) {
        log_.error("NO-OP SetCapacity({:g}, {:g}, {}) on {} /bms/0", cap, loss, top, service_);
        co_return true;
    }
    std::vector<Value> args{Value(cap), Value(loss), Value(top)};
    auto reply = co_await call("/bms/0", "SetCapacity", "ddb", std::move(args));
    co_return !reply.empty() && reply[0].is_bool() && reply[0].as_bool();
}

Task<std::string> BmsClient::lost() {
    for (;;) {
        co_await sleep_for(watch_interval);
        std::string now;
        try {
            now = co_await owner();
        } catch (const DBusError& e) {
            co_return fmt::format("{} left the bus ({})", service_, e.name());
        }
        if (now != owner_)
            co_return fmt::format("{} changed hands ({} -> {}): its energy records started anew", service_, owner_, now);
    }
}

} // namespace moat::inverter
