// The extended status line: the original line, then what a newcomer wants to
// see at a glance — the grid power per phase and in total, and the
// controller's mode and target when one is on the bus:
//
//   <original line>  Grid  -52W (-17/-20/-15)  p_grid -50W
#pragma once

#include "snapshot.hpp"

#include <string>
#include <string_view>

namespace moat::statusline {

/// Which line the plugin and `moat-victron status` print.
enum class LineFormat { original, extended };

/// "original" or "extended"; nullopt for anything else.
std::optional<LineFormat> parse_line_format(std::string_view name);

/// `Grid  -52W (-17/-20/-15)`: the phases system /Ac/Grid/L{i}/Power
/// publishes, `%.0f` each, and their sum; `Grid ---` when it publishes none.
/// An invalid phase shows `---` and is left out of the sum.
std::string grid_part(const Snapshot& snapshot);

/// `p_grid -50W`, `i_batt 10.0A`, `soc 0.80`, `off`: the controller's mode
/// and its target; empty without a controller.
std::string controller_part(const Snapshot& snapshot);

/// `line` followed by the grid part and, when present, the controller part.
std::string extend_line(const std::string& line, const Snapshot& snapshot);

} // namespace moat::statusline
