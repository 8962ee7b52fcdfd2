// The critical settings of a Victron ESS system: which Venus values we
// watch, what each should be, and how a read value is judged. Pure: no bus,
// no clock. Used by the guard plugin (every check, published and fixed) and
// by the inverter plugin (OvervoltageFeedIn and Hub4Mode before it writes).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <moat/value.hpp>

namespace moat::critical {

/// How a check judges what it read. `unknown`: the service or the path is
/// missing, or the value is no number: never taken for ok.
enum class State { ok, warning, critical, unknown };
std::string_view to_string(State s);
/// "ok", "warning", ... → State; nullopt for anything else.
std::optional<State> parse_state(std::string_view s);
/// The worse of two states: critical > unknown > warning > ok (unknown is
/// worse than a warning because nobody can tell that it is not critical).
State worse(State a, State b);
/// A Venus alarm level (0 ok, 1 warning, 2 alarm): unknown counts as a warning.
int alarm_level(State s);

/// Which service holds the value.
enum class Role {
    settings,  ///< com.victronenergy.settings
    system,    ///< com.victronenergy.system
    vebus,     ///< the Multi: the service com.victronenergy.system names in /VebusService
    battery,   ///< the battery: the service named in /Dc/Battery/BatteryService
};
std::string_view to_string(Role r);

/// What was read from the bus. `present` false: the service or the path is
/// not there. A present path may still hold the invalid value.
struct Reading {
    bool present = false;
    Value value;
    /// A reading from a value where invalid means "not there" (a monitor cache).
    static Reading of(const Value& v) { return Reading{v.is_valid(), v}; }
};

/// Other facts some checks compare against.
struct Facts {
    /// The BMS's /Info/MaxChargeVoltage when it is a plausible value.
    std::optional<double> bms_charge_voltage;
    /// The export the owner plans (W, > 0); MaxFeedInPower below it is a warning. 0 = not known.
    double planned_export = 0;
};

/// A judgement: the state and one sentence about what the value means.
struct Verdict {
    State state = State::unknown;
    std::string text;
};

/// One watched value.
struct Check {
    std::string_view name;      ///< "OvervoltageFeedIn": a D-Bus path element, the name in `fix`
    Role role;
    std::string_view path;      ///< "/Settings/CGwacs/OvervoltageFeedIn"
    std::string_view expected;  ///< for people: "0", "3", "bit 0 set", "any"
    std::string_view risk;      ///< why it matters, one sentence
    /// The value a fix writes; nullopt: not fixable (the owner decides).
    std::optional<Value> safe_value;
    /// Judges a present, valid value.
    Verdict (*judge)(const Value& v, const Facts& facts);
    /// The state of a present path holding the invalid value.
    State when_invalid = State::unknown;
};

/// Every check, in a fixed order.
std::span<const Check> checks();
/// The check called `name`; nullptr when there is none.
const Check* find_check(std::string_view name);

/// Judge a reading: missing → unknown ("... not on the bus"), invalid →
/// the check's when_invalid, else the check's judgement.
Verdict evaluate(const Check& check, const Reading& reading, const Facts& facts = {});

/// The checks the inverter needs before it writes. Each is evaluate() of the
/// table entry of that name; a value read from a monitor cache (invalid =
/// missing) gives unknown, never ok.
///   OvervoltageFeedIn: critical when 1 → refuse closed-loop modes.
///   Hub4Mode: ok only for 3 → write setpoints only then.
Verdict overvoltage_feed_in(const Value& value);
Verdict hub4_mode(const Value& value);

} // namespace moat::critical
