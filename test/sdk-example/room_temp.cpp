// room_temp: a complete third-party plugin. It publishes a temperature
// sensor as a Venus service (com.victronenergy.temperature.<instance>) with a
// reading that drifts toward a writeable target, and brings the client
// command `moat-victron room-temp` that prints the reading.
#include <moat/dbus.hpp>
#include <moat/plugin.hpp>
#include <moat/service.hpp>

#include <cmath>
#include <cstdio>

namespace {

using namespace std::chrono;

class RoomTemp final : public moat::Plugin {
public:
    explicit RoomTemp(moat::Context& ctx) : ctx_(ctx) {}

    moat::Task<void> run() override {
        const std::string name = "com.victronenergy.temperature." + ctx_.instance;
        moat::Service svc(ctx_.loop, name, ctx_.bus_spec, ctx_.log.child("dbus"));
        svc.add_mandatory({.process_name = "moat-victron",
                           .process_version = "1.0",
                           .connection = "room_temp example",
                           .device_instance = ctx_.config.get_int("device_instance"),
                           .product_id = 0xFFFF,
                           .product_name = "Room temperature (SDK example)",
                           .firmware_version = moat::Value(),
                           .hardware_version = moat::Value(),
                           .connected = 1});
        auto& temperature = svc.add("/Temperature", ctx_.config.get_number("start"), moat::ItemOptions().text("%.1F C"));
        auto& target = svc.add("/Target", ctx_.config.get_number("start"),
                               moat::ItemOptions().writeable().type(moat::ValueType::floating).range(-20.0, 60.0));
        co_await svc.start();
        ctx_.log.info("publishing {}", name);
        for (;;) {
            co_await moat::sleep_for(duration_cast<moat::Duration>(duration<double>(ctx_.config.get_number("period"))));
            double now = temperature.value().as_double();
            double goal = target.value().as_double();
            // Half of the way each step, then exactly there.
            temperature.set(std::abs(goal - now) < 0.05 ? goal : now + (goal - now) / 2);
        }
    }

    /// `moat-victron room-temp [--instance NAME]`: prints the published reading.
    static std::span<const moat::ClientCommand* const> commands();

private:
    moat::Context& ctx_;
};

moat::Task<int> print_temperature(moat::CommandContext& ctx, std::string instance) {
    auto reply = co_await moat::call_method(ctx.bus, "com.victronenergy.temperature." + instance, "/Temperature",
                                            moat::busitem_interface, "GetValue", "", {}, seconds(5));
    moat::Value v = reply.empty() ? moat::Value() : reply.front();
    std::printf("%s\n", moat::text(v).c_str());
    co_return moat::command_ok;
}

const moat::ClientCommand room_temp_command{
    "room-temp",
    "print the room temperature the room_temp plugin publishes",
    "  --instance NAME   the plugin instance (default room)\n",
    [](const std::vector<std::string>& args) -> moat::CommandTask {
        std::string instance = "room";
        moat::ArgReader r(args);
        while (r.next()) {
            if (r.is("--instance")) instance = r.value();
            else throw moat::UsageError(r.unknown());
        }
        return [instance](moat::CommandContext& ctx) { return print_temperature(ctx, instance); };
    },
};

std::span<const moat::ClientCommand* const> RoomTemp::commands() {
    static const moat::ClientCommand* const list[] = {&room_temp_command};
    return list;
}

const moat::ConfigKey keys[] = {
    {"start", moat::KeyType::number, "21.0", "first reading and target, degrees Celsius", -20, 60},
    {"period", moat::KeyType::number, "1.0", "seconds between readings", 0.01, 3600},
    {"device_instance", moat::KeyType::integer, "30", "the Venus device instance", 0, 1000},
};

} // namespace

MOAT_PLUGIN(RoomTemp, "room_temp", "1.0", "SDK example: a room temperature sensor on D-Bus", keys)
