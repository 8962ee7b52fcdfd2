#include "snapshot.hpp"

namespace moat::statusline {

std::string_view state_name(Reading::State state) noexcept
{
    switch (state) {
    case Reading::State::present: return "present";
    case Reading::State::missing: return "missing";
    case Reading::State::stale: return "stale";
    }
    return "?";
}

namespace {

constexpr std::array<std::string_view, 4> charger_paths{
    "/Dc/0/Voltage", "/Dc/0/Current", "/Link/ChargeCurrent", "/Yield/Power"};

constexpr std::array<std::string_view, 7> battery_paths{
    "/Dc/0/Voltage",          "/Dc/0/Current",       "/Info/MaxChargeCurrent", "/Info/MaxChargeVoltage",
    "/Info/MaxDischargeCurrent", "/Io/AllowToCharge", "/Io/AllowToDischarge"};

constexpr std::array<std::string_view, 7> vebus_paths{
    "/Dc/0/Current",
    "/Hub4/L1/AcPowerSetpoint", "/Hub4/L2/AcPowerSetpoint", "/Hub4/L3/AcPowerSetpoint",
    "/Ac/ActiveIn/L1/P",        "/Ac/ActiveIn/L2/P",        "/Ac/ActiveIn/L3/P"};

constexpr std::array<std::string_view, 8> system_paths{
    "/VebusService", "/Ac/ActiveIn/NumberOfPhases",
    "/Ac/ActiveIn/L1/Power", "/Ac/ActiveIn/L2/Power", "/Ac/ActiveIn/L3/Power",
    "/Ac/Grid/L1/Power", "/Ac/Grid/L2/Power", "/Ac/Grid/L3/Power"};

constexpr std::array<std::string_view, 4> controller_paths{"/Mode", "/Power", "/Current", "/DestSoc"};

// The readings of `fields`, in the order of `paths`: the one place that ties
// a path to a member.
template <std::size_t N>
Reading* lookup(const std::array<std::string_view, N>& paths, std::string_view path,
                const std::array<Reading*, N>& fields) noexcept
{
    for (std::size_t i = 0; i < N; ++i)
        if (paths[i] == path)
            return fields[i];
    return nullptr;
}

} // namespace

std::span<const std::string_view> SolarCharger::paths() noexcept { return charger_paths; }

Reading* SolarCharger::at(std::string_view path) noexcept
{
    return lookup(charger_paths, path, {&voltage, &current, &link_charge_current, &yield_power});
}

std::span<const std::string_view> Battery::paths() noexcept { return battery_paths; }

Reading* Battery::at(std::string_view path) noexcept
{
    return lookup(battery_paths, path,
                  {&voltage, &current, &max_charge_current, &max_charge_voltage, &max_discharge_current,
                   &allow_to_charge, &allow_to_discharge});
}

std::span<const std::string_view> Vebus::paths() noexcept { return vebus_paths; }

Reading* Vebus::at(std::string_view path) noexcept
{
    return lookup(vebus_paths, path,
                  {&dc_current, &ac_power_setpoint[0], &ac_power_setpoint[1], &ac_power_setpoint[2],
                   &active_in_power[0], &active_in_power[1], &active_in_power[2]});
}

std::span<const std::string_view> System::paths() noexcept { return system_paths; }

Reading* System::at(std::string_view path) noexcept
{
    return lookup(system_paths, path,
                  {&vebus_service, &phase_count, &active_in_power[0], &active_in_power[1], &active_in_power[2],
                   &grid_power[0], &grid_power[1], &grid_power[2]});
}

std::span<const std::string_view> Controller::paths() noexcept { return controller_paths; }

Reading* Controller::at(std::string_view path) noexcept
{
    return lookup(controller_paths, path, {&mode, &power, &current, &dest_soc});
}

} // namespace moat::statusline
