#include "ring_reader.hpp"

#include <cmath>
#include <fmt/format.h>

#include "config_merge.hpp"
#include "conversions.hpp"

namespace moat::bms {

using namespace cell;

namespace {
double cfg_number(const msgpack::Value& cfg, const std::string& path, double fallback)
{
    const auto* v = config_at(cfg, path);
    return v && v->number() ? *v->number() : fallback;
}
} // namespace

Task<int> ring_size(LinkSession& s)
{
    CellRequest one;
    one.command = Command::read_voltage_and_status;
    auto t = s.cells.request(std::move(one));
    std::optional<Reply> r;
    try {
        r = co_await t;
    } catch (const CellError& e) {
        // Nobody at hop 0 took the command: an empty ring (the packet went round).
        if (e.kind() != CellErrorKind::no_such_cell) throw;
    }
    co_return r ? int(r->header.hops) : 0;
}

Task<RingSnapshot> read_ring(LinkSession& s, int n, Logger& log)
{
    RingSnapshot snap;
    snap.hops = co_await ring_size(s);
    if (n > snap.hops) {
        snap.warnings.push_back(fmt::format("the ring has {} modules, the configuration {} cells", snap.hops, n));
        log.warning("{}", snap.warnings.back());
    }
    if (n <= 0 || n > snap.hops) n = snap.hops;
    n = std::min(n, max_cells);
    if (n <= 0) co_return snap;
    auto read = [&](Command c) { return s.cells.request(CellRequest{.command = c, .start = 0, .count = n, .records = {}}); };
    auto settings = read(Command::read_settings);
    Reply rs = co_await settings;
    auto voltages = read(Command::read_voltage_and_status);
    Reply rv = co_await voltages;
    auto temps = read(Command::read_temperature);
    Reply rt = co_await temps;

    const auto& cfg = s.config;
    const std::string base = s.app + ".cell.";
    const double offset = cfg_number(cfg, base + "u.offset", 0);
    const double samples_cfg = cfg_number(cfg, base + "u.samples", 5);
    const double b_load = cfg_number(cfg, base + "load.b", 3950);
    const double b_cell = cfg_number(cfg, base + "batt.b", 3950);
    auto warn = [&](std::string w) {
        log.warning("{}", w);
        snap.warnings.push_back(std::move(w));
    };
    for (int i = 0; i < n; ++i) {
        CellSnapshot c;
        c.index = i;
        c.settings = decode_settings(rs.records[std::size_t(i)]);
        c.voltage = decode_voltage(rv.records[std::size_t(i)]);
        c.temps = decode_temperatures(rt.records[std::size_t(i)]);
        if (c.settings.num_samples != samples_cfg)
            warn(fmt::format("cell {}: the module averages {} samples, cell.u.samples says {}; using the module's", i,
                             c.settings.num_samples, samples_cfg));
        if (c.settings.b_internal != b_load || c.settings.b_external != b_cell)
            warn(fmt::format("cell {}: the module reports B {}/{}, the configuration {}/{}; using the configuration", i,
                             c.settings.b_internal, c.settings.b_external, b_load, b_cell));
        const VoltScale scale{c.settings.volts_per_step(), double(c.settings.calibration()), offset, c.settings.num_samples};
        c.voltage_reading = classify(c.voltage, c.settings.num_samples);
        if (c.voltage_reading == Reading::value) c.volts = raw_to_volt(c.voltage.raw(), scale);
        else if (c.voltage_reading == Reading::invalid) warn(fmt::format("cell {}: invalid voltage raw 0x{:04X}", i, c.voltage.word));
        if (classify_thermistor(c.temps.int_raw) == Reading::value) c.load_celsius = raw_to_celsius(c.temps.int_raw, b_load);
        else if (classify_thermistor(c.temps.int_raw) == Reading::invalid) warn(fmt::format("cell {}: invalid load thermistor raw {}", i, c.temps.int_raw));
        if (classify_thermistor(c.temps.ext_raw) == Reading::value) c.cell_celsius = raw_to_celsius(c.temps.ext_raw, b_cell);
        else if (classify_thermistor(c.temps.ext_raw) == Reading::invalid) warn(fmt::format("cell {}: invalid cell thermistor raw {}", i, c.temps.ext_raw));
        snap.cells.push_back(c);
    }
    co_return snap;
}

} // namespace moat::bms
