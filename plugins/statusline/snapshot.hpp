// The inputs of one status line (shared/specs/statusline.md §2): what the
// bus monitor's cache holds for every solar charger, every battery, the
// Multi (vebus) and the system service at the instant of a tick.
//
// Whoever builds a Snapshot (the plugin, the `moat-victron status` client,
// a test) owns the bus side: enumerating services, leaving out services
// without /DeviceInstance (§8), resolving system /VebusService to a vebus
// service every tick (§7). Nothing here touches the bus.
#pragma once

#include <moat/value.hpp>

#include <array>
#include <concepts>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace moat::statusline {

/// One value from the monitor's cache, tagged with how it got there.
///
/// The line treats a missing or stale reading exactly like an invalid one
/// (the original's cache answers None for all three); the tag only lets
/// "Incomplete data" say why.
class Reading {
public:
    enum class State {
        present, ///< the service publishes the path; the value may still be invalid
        missing, ///< the service does not publish the path (or was never seen)
        stale,   ///< the monitor still has a value but no longer vouches for it
    };

    /// A missing reading.
    Reading() noexcept = default;
    /// A present reading. Implicit, so that `reading = 53.12` reads naturally.
    template <class T>
        requires(!std::same_as<std::remove_cvref_t<T>, Reading> && std::constructible_from<moat::Value, T &&>)
    Reading(T&& v) : value_(std::forward<T>(v)), state_(State::present)
    {
    }

    static Reading missing() noexcept { return Reading(); }
    /// A value kept from before the monitor lost track of it.
    static Reading stale(moat::Value last) noexcept
    {
        Reading r;
        r.value_ = std::move(last);
        r.state_ = State::stale;
        return r;
    }

    State state() const noexcept { return state_; }
    /// What the line uses: the value when present, the invalid value otherwise.
    const moat::Value& value() const noexcept { return state_ == State::present ? value_ : invalid_; }
    /// The cached value whatever the state (for diagnostics).
    const moat::Value& cached() const noexcept { return value_; }

private:
    static inline const moat::Value invalid_{};
    moat::Value value_;
    State state_ = State::missing;
};

/// "present", "missing" or "stale".
std::string_view state_name(Reading::State state) noexcept;

/// Victron's phases are L1..L3; per-phase arrays are indexed by phase − 1.
inline constexpr std::size_t max_phases = 3;

/// A `com.victronenergy.solarcharger.*` service.
struct SolarCharger {
    std::string service;
    Reading voltage;             ///< /Dc/0/Voltage
    Reading current;             ///< /Dc/0/Current
    Reading link_charge_current; ///< /Link/ChargeCurrent, the DVCC limit
    Reading yield_power;         ///< /Yield/Power

    /// The paths above, for the monitor's subscription.
    static std::span<const std::string_view> paths() noexcept;
    /// The reading a path feeds, or nullptr for a path the line does not use.
    Reading* at(std::string_view path) noexcept;
};

/// A `com.victronenergy.battery.*` service.
struct Battery {
    std::string service;
    Reading voltage;               ///< /Dc/0/Voltage (must be valid; not shown)
    Reading current;               ///< /Dc/0/Current, + = charging
    Reading max_charge_current;    ///< /Info/MaxChargeCurrent
    Reading max_charge_voltage;    ///< /Info/MaxChargeVoltage
    Reading max_discharge_current; ///< /Info/MaxDischargeCurrent
    Reading allow_to_charge;       ///< /Io/AllowToCharge
    Reading allow_to_discharge;    ///< /Io/AllowToDischarge

    static std::span<const std::string_view> paths() noexcept;
    Reading* at(std::string_view path) noexcept;
};

/// The vebus service (the Multi) that system /VebusService names.
struct Vebus {
    std::string service;
    Reading dc_current;                                 ///< /Dc/0/Current
    std::array<Reading, max_phases> ac_power_setpoint;  ///< /Hub4/L{i}/AcPowerSetpoint, ESS setpoint
    std::array<Reading, max_phases> active_in_power;    ///< /Ac/ActiveIn/L{i}/P, the Multi's AC-in power

    static std::span<const std::string_view> paths() noexcept;
    Reading* at(std::string_view path) noexcept;
};

/// `com.victronenergy.system`.
struct System {
    static constexpr std::string_view service = "com.victronenergy.system";
    Reading vebus_service;                            ///< /VebusService, for whoever fills Snapshot::vebus
    Reading phase_count;                              ///< /Ac/ActiveIn/NumberOfPhases
    std::array<Reading, max_phases> active_in_power;  ///< /Ac/ActiveIn/L{i}/Power, at the grid connection
    std::array<Reading, max_phases> grid_power;       ///< /Ac/Grid/L{i}/Power (the extended format)

    static std::span<const std::string_view> paths() noexcept;
    Reading* at(std::string_view path) noexcept;
};

/// A charger/inverter controller's Venus service (`com.victronenergy.moatinv.*`,
/// published by the inverter plugin), for the extended format.
struct Controller {
    static constexpr std::string_view service_class = "com.victronenergy.moatinv";
    std::string service;
    Reading mode;      ///< /Mode: off idle p_grid p_inv i_batt soc remote
    Reading power;     ///< /Power, W: the target of p_grid and p_inv
    Reading current;   ///< /Current, A: the target of i_batt
    Reading dest_soc;  ///< /DestSoc, 0..1: the target of soc

    static std::span<const std::string_view> paths() noexcept;
    Reading* at(std::string_view path) noexcept;
};

/// Everything one tick looks at. The paths the original subscribes to but
/// never prints (§2, "also subscribed, unused") are left out.
struct Snapshot {
    std::vector<SolarCharger> chargers; ///< in bus enumeration order
    std::vector<Battery> batteries;     ///< in bus enumeration order
    std::optional<Vebus> vebus;         ///< nullopt: no /VebusService, or that service is absent
    std::optional<System> system;       ///< nullopt: no system service
    std::optional<Controller> controller; ///< the first controller on the bus, if any
};

} // namespace moat::statusline
