// The plugin's configuration keys and their translation into SessionOptions
// (shared by the plugin and the probe command).
#pragma once

#include <span>

#include <moat/config.hpp>

#include "link_session.hpp"

namespace moat::bms {

std::span<const ConfigKey> config_keys();
/// Exactly one of device and socket; throws ConfigError naming the key.
void validate_config(const Config& c);
SessionOptions session_options(const Config& c);

} // namespace moat::bms
