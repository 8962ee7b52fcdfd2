// The battery keys' checks for --check-config and before every start, beyond
// the declared ranges: the TOML overrides of the controller's configuration
// (all of it with config_source = "local"; with "device" what can be judged
// without the controller's copy) and the staleness limits against the poll
// intervals. Each error names the file, the line and the key.
#pragma once

#include <moat/config.hpp>

namespace moat::bms {

void validate_battery_keys(const Config& c);

} // namespace moat::bms
