// The bus side of the status line, shared by the plugin and the
// `moat-victron status` command: which services the line follows (spec §2)
// and how a Snapshot is filled from the Monitor's cache at a tick.
#pragma once

#include "snapshot.hpp"

#include <moat/loop.hpp>
#include <moat/monitor.hpp>
#include <moat/task.hpp>

#include <optional>
#include <string>

namespace moat::statusline {

inline constexpr std::string_view charger_class = "com.victronenergy.solarcharger";
inline constexpr std::string_view battery_class = "com.victronenergy.battery";
inline constexpr std::string_view vebus_class = "com.victronenergy.vebus";

struct GatherOptions {
    /// A service counts as frozen when none of the paths the line reads from
    /// it was updated (a signal, even with an equal value, or the scan) for
    /// this long: its readings are then `stale`, which the line treats like
    /// invalid ones. nullopt: never. Per service rather than per path because
    /// single values (limits, flags) legitimately stay constant for hours and
    /// Venus publishers do not repeat equal values.
    std::optional<Duration> max_age;
};

/// Start following every class the line reads (idempotent).
void follow(Monitor& monitor);

/// The snapshot of this instant: every solar charger and battery that has a
/// /DeviceInstance (§8), in the monitor's order (by name); the system
/// service; the vebus service system /VebusService names now (§7), when it
/// is a followed, completely read service with a /DeviceInstance. A path a
/// service does not publish is `missing`; a service that left the bus is
/// absent. Never throws (barring std::bad_alloc).
Snapshot gather(Monitor& monitor, const GatherOptions& options = {});

/// Waits until the monitor has read every service present when it started
/// following them, the system service is there and the vebus service it
/// names (if any) too; polls, cancellable. nullopt when all is there,
/// otherwise (after `timeout`) what is still missing, as a sentence.
Task<std::optional<std::string>> wait_for_data(Loop& loop, Monitor& monitor, Duration timeout);

/// The system service is present (read completely, with a /DeviceInstance).
bool have_system(Monitor& monitor);

} // namespace moat::statusline
