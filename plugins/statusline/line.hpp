// The status line's text (shared/specs/statusline.md §3, §4): one line per
// tick, UTF-8, no newline.
//
//   53.15+2.1V  Sol  2840W  52.5A <100  Bat  12.3A >-200.0<140.0  Inv -40.2A  -700: -5/816 ...
//
// Numbers are formatted like the original's Python %-formatting, byte for
// byte; README.md explains the fields to users.
#pragma once

#include "aggregate.hpp"
#include "snapshot.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace moat::statusline {

/// The whole line of a tick whose inputs are incomplete (§4 layer 1).
inline constexpr std::string_view incomplete_line = "Incomplete data";

/// The glyphs of §3.2 before the discharge and the charge limit. A doubled
/// glyph marks the direction the BMS forbids.
inline constexpr std::string_view discharge_allowed_glyph = ">";
inline constexpr std::string_view discharge_blocked_glyph = "\xE2\x89\xAB"; // U+226B ≫
inline constexpr std::string_view charge_allowed_glyph = "<";
inline constexpr std::string_view charge_blocked_glyph = "\xE2\x89\xAA"; // U+226A ≪

/// §3.1, the compact headroom `d = cv − cvol`: for |d| < 1 Python's `%+.2f`
/// without its leading digit (`+.39`, `-.05`, `+.00`), else `%+3.1f`
/// (`+2.1`, `-53.1`).
///
/// One deliberate difference from the original: where |d| < 1 rounds to
/// ±1.00 (0.995… ≤ |d| < 1), the original drops the `1` and shows `+.00`;
/// here it is clamped to `+.99` / `-.99`, which keeps the four characters
/// and is off by less than 0.01 instead of by 1.
std::string voltage_delta(double d);

/// §3.3 and §4 layer 2: the phase blocks joined by single spaces, each
/// `%5.0f:%3.0f/%3.0f` of (setp, setp − runp, curp − runp). When any value of
/// any phase is not a number, every block takes the raw form `setp:curp/runp`
/// with Python's str() (`None:120.5/-695.2`). Empty for zero phases.
std::string phase_blocks(const std::vector<PhaseValues>& phases);

/// The line for totals: the §3 format, or, when a value the format needs is
/// not a number (in practice an invalid vebus current), the §4 layer 3
/// fallback `U=<cvol> <cv>  Sol I=<cur> <maxcur> <power>  Bat I=<bcur>
/// <bmaxc> <bmaxd>  Inv I=<iv> P=<phase blocks>` with str() of each.
std::string format_line(const Totals& totals);

/// incomplete_line for Incomplete, format_line() for Totals.
std::string format_line(const Aggregate& aggregate);

/// `text` with every control character (C0, DEL) replaced by '?': strings
/// from the bus (a phase value, a controller's mode) must not break the line
/// in two or send terminal escapes.
std::string single_line(std::string text);

/// format_line(aggregate(snapshot)). Never throws (barring std::bad_alloc).
std::string status_line(const Snapshot& snapshot);

} // namespace moat::statusline
