// `moat-victron inverter ...`: a client command (moat/command.hpp) for the
// inverter plugin's control interface (org.m_o_a_t.inv on /Control).
#pragma once

#include "moat/command.hpp"

namespace moat {

extern const ClientCommand inverter_command;

} // namespace moat
