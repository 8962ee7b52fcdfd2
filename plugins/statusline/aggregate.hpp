// Per-tick aggregation (shared/specs/statusline.md §2.1, with the port's
// decisions of §4 and §8): sums over chargers and batteries, the BMS limits
// and permissions, the Multi's DC current and the per-phase triples.
#pragma once

#include "snapshot.hpp"

#include <moat/value.hpp>

#include <cstddef>
#include <string>
#include <variant>
#include <vector>

namespace moat::statusline {

/// Why a tick prints `Incomplete data` (§4 layer 1 and the crash paths the
/// port turns into it, §8). Names the first offending item.
struct Incomplete {
    std::string service; ///< e.g. "com.victronenergy.solarcharger.ttyO1"
    std::string path;    ///< e.g. "/Dc/0/Voltage"
    std::string reason;  ///< "missing", "stale", "invalid", "not a number: 'x'", ...

    /// "com.victronenergy.solarcharger.ttyO1 /Dc/0/Voltage: missing"
    std::string message() const;
};

/// One phase's values as read, for §3.3 and the raw form of §4 layer 2.
/// Invalid when missing, stale or not published.
struct PhaseValues {
    moat::Value setpoint;     ///< setp: vebus /Hub4/L{i}/AcPowerSetpoint
    moat::Value system_power; ///< curp: system /Ac/ActiveIn/L{i}/Power
    moat::Value vebus_power;  ///< runp: vebus /Ac/ActiveIn/L{i}/P
};

/// The §2.1 symbols for a complete tick. Numbers keep Python's types (an
/// integer or a double, see python.hpp) because the fallback form prints
/// them with str().
struct Totals {
    std::size_t chargers = 0;           ///< nc
    moat::Value charger_voltage{0.0};   ///< cvol: mean charger voltage, always a double
    moat::Value charger_current{0};     ///< cur: Σ charger current
    moat::Value charge_limit{0};        ///< maxcur: Σ /Link/ChargeCurrent, invalid counting 0
    moat::Value solar_power{0};         ///< power: Σ /Yield/Power
    moat::Value battery_current{0};     ///< bcur: Σ battery current
    moat::Value max_charge_current{0};  ///< bmaxc: Σ /Info/MaxChargeCurrent
    moat::Value max_discharge_current{0}; ///< bmaxd: Σ /Info/MaxDischargeCurrent (positive)
    moat::Value charge_voltage{0};      ///< cv: lowest valid /Info/MaxChargeVoltage, 0 if none
    bool charge_allowed = true;         ///< okc: every battery's /Io/AllowToCharge is truthy
    bool discharge_allowed = true;      ///< okd: same for /Io/AllowToDischarge
    moat::Value inverter_current;       ///< iv: vebus /Dc/0/Current as read (may be invalid)
    std::vector<PhaseValues> phases;    ///< one per phase of system /Ac/ActiveIn/NumberOfPhases
};

/// Either the reason for `Incomplete data` or the totals to print.
using Aggregate = std::variant<Incomplete, Totals>;

/// Aggregates one snapshot. `Incomplete` when, checked in this order:
/// - a charger's voltage, current or yield power is not a number (§4 layer 1);
/// - a battery's voltage, current, max charge or max discharge current is not
///   a number (the original crashes; §8);
/// - the system service is absent, or the phase count is not a whole number
///   0..3 (a stale one included). A missing or invalid count means 0 phases
///   (the AC input is down): the DC part is still shown.
///
/// "Not a number" covers missing, stale and invalid readings as well as
/// strings, lists and dicts (on which the original raises). Everything else
/// is tolerated: an invalid /Link/ChargeCurrent counts 0, batteries without a
/// valid /Info/MaxChargeVoltage are skipped for cv (the lowest of the rest
/// wins, §8; 0 when none has one), and invalid per-phase values or an
/// invalid vebus current are passed through for line.hpp's layers 2 and 3.
/// Never throws for any snapshot (barring std::bad_alloc).
Aggregate aggregate(const Snapshot& snapshot);

} // namespace moat::statusline
