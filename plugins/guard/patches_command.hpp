// `moat-victron patches status|apply|verify|revert|boot [NAME...]`: the
// opt-in patch manager for Venus OS files (patches/*.toml), with backups,
// hash checks, read-only root handling and the restart of the patched service.
#pragma once

#include <moat/command.hpp>

namespace moat::guard {

extern const ClientCommand patches_command;

} // namespace moat::guard
