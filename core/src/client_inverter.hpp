// `moat-victron inverter ...`: a command-line client of the inverter plugin's
// control interface (org.m_o_a_t.inv on /Control).
#pragma once

namespace moat {

/// argv[0] is "inverter". Returns the process exit code.
int inverter_client(int argc, char** argv);

} // namespace moat
