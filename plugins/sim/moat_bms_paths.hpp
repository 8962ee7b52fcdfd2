// The simulated MoaT BMS controller's faults and observables under
// /Sim/MoatBms on a service of their own (org.m_o_a_t.sim.<instance>), as
// the other simulated devices have /Sim/Fault: a write applies the same
// command moat-bms-tool's stdin takes (sim_commands.hpp), so both drivers
// share one implementation. Observables are refreshed every second.
#pragma once

#include <moat/service.hpp>

#include <optional>
#include <string>
#include <vector>

#include "sim_device.hpp"

namespace moat::sim {

class MoatBmsPaths {
public:
    /// `modules`: how many /Sim/MoatBms/Cell/<i> paths to export.
    MoatBmsPaths(Loop& loop, const std::string& instance, const std::string& bus_spec, int modules, Logger log);

    static std::string name_for(const std::string& instance);

    Task<void> start();
    /// The device behind the pty now (nullptr while there is none).
    void attach(bms::sim::SimDevice* device, const std::string& pty);
    /// Set when a write asks for a new pty (/Sim/MoatBms/Eof 1, /Sim/MoatBms/Reset 2).
    Event* reopen = nullptr;
    /// Update the observables from the device.
    void refresh();
    /// The true pack current (A, + = charging) the controller measures while its relay is closed.
    void set_pack_current(double amps);
    /// The cells follow the simulated battery: each module's true voltage is
    /// its share of `volts` plus an offset of its own, which a written
    /// /Sim/MoatBms/Cell/<i>/Voltage sets (that cell stays so far off its share).
    void follow_pack_voltage(double volts);
    /// The controller's relay (nullopt while there is no controller).
    std::optional<bool> relay() const;

private:
    void written(const Write& w);

    Service service_;
    Logger log_;
    int modules_;
    bms::sim::SimDevice* device_ = nullptr;
    std::optional<double> share_;   ///< a cell's share of the pack voltage, while following
    std::vector<double> offsets_;   ///< per module, from a written cell voltage
};

} // namespace moat::sim
