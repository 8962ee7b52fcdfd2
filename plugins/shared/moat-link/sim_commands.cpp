#include "sim_commands.hpp"

#include "config_merge.hpp"

#include <cmath>
#include <sstream>

namespace moat::bms::sim {

const char* const command_help =
    "mute 0|1, dead 0|1, invalid N, drop_nth K, drop_p P, seen 0|1, garbage 0|1, truncate 0|1, duplicate 0|1, "
    "reorder 0|1, flood N, voltage I V, vraw I RAW, traw I RAW, modules M, current A, lose_work 0|1, "
    "omit_mplex_cfg 0|1, cfg KEY NUMBER (a change of the running configuration on the controller, e.g. cfg batt.cell.balance.n 2), u_gain G (the pack ADC reads G x the true voltage), eof, reset 1|2 (1 soft, 2 hard: a power cycle, a new pty)";

std::string apply_command(SimDevice& d, const std::string& line)
{
    std::istringstream in(line);
    std::string w;
    in >> w;
    if (w == "cfg") {  // cfg KEY NUMBER: a dotted key of the running configuration
        std::string key;
        double value = 0;
        if (!(in >> key >> value) || key.empty()) return "error cfg KEY NUMBER";
        const bool integral = std::abs(value) < 1e15 && value == std::floor(value);
        d.controller().change_config(
            config_delta(key, integral ? msgpack::Value(std::int64_t(value)) : msgpack::Value(value)));
        return "ok";
    }
    double a = 0, b = 0;
    in >> a >> b;
    auto& ring = d.controller().ring();
    auto& ctl = d.controller();
    const bool module_cmd = w == "voltage" || w == "vraw" || w == "traw";
    if (module_cmd && (a < 0 || a >= double(ring.modules().size()))) return "error no module " + std::to_string(int(a));
    auto module = [&]() -> SimModule& { return ring.modules()[std::size_t(a)]; };
    if (w == "mute") d.faults.mute = a != 0;
    else if (w == "dead") ring.faults.dead = a != 0;
    else if (w == "invalid") d.faults.invalid_msgpack = int(a);
    else if (w == "drop_nth") ring.faults.drop_nth = int(a);
    else if (w == "drop_p") ring.faults.drop_probability = a;
    else if (w == "seen") ring.faults.clear_seen = a == 0;
    else if (w == "garbage") ring.faults.append_garbage = a != 0;
    else if (w == "truncate") ring.faults.truncate = a != 0;
    else if (w == "duplicate") ring.faults.duplicate = a != 0;
    else if (w == "reorder") ring.faults.reorder = a != 0;
    else if (w == "flood") ctl.flood_in_pkt(int(a));
    else if (w == "voltage") module().voltage = b;
    else if (w == "vraw") module().voltage_raw_override = std::uint16_t(b);
    else if (w == "traw") module().temp_raw_override = std::uint16_t(b);
    else if (w == "modules") {
        if (a < 0 || a > 255) return "error modules 0..255";
        ring.resize(int(a));
    } else if (w == "current") ctl.pack_current = a;
    else if (w == "u_gain") {
        if (!(a > 0 && a < 10)) return "error u_gain 0..10";
        ctl.u_gain = a;
    }
    else if (w == "lose_work") ctl.faults.lose_next_work_push = a != 0;
    else if (w == "omit_mplex_cfg") ctl.faults.omit_mplex_cfg = a != 0;
    else if (w == "eof") return "reopen";
    else if (w == "reset") {
        if (a == 1) ctl.reboot(false);  // soft: the RAM configuration is lost, the port stays
        else if (a == 2) return "reopen";  // hard: the USB device, and so the pty, comes back anew
        else return "error reset 1|2";
    }
    else return "error unknown command '" + w + "'";
    return "ok";
}

} // namespace moat::bms::sim
