// The MoaT BMS over D-Bus, for the analyze mode: the org.m_o_a_t.bms
// interface of a battery service (objects /bms and /bms/0), and a watch on its
// bus name. Every failure is a ModeAbort naming the service and the call, so
// analyze ends with the safe setpoints first. In fake mode it changes nothing
// on the BMS: the counters are "cleared" here (a baseline), SetCapacity is a
// NO-OP log line.
#pragma once

#include <string>

#include <moat/bus.hpp>
#include <moat/log.hpp>
#include <moat/task.hpp>
#include <moat/value.hpp>

#include "analyze.hpp"

namespace moat::inverter {

class BmsClient final : public BmsIo {
public:
    static constexpr const char* interface = "org.m_o_a_t.bms";
    /// Live BMS calls (GetWork with poll asks the controller) take seconds at most.
    static constexpr Duration call_timeout = std::chrono::seconds(10);
    /// How often lost() asks the bus who owns the name.
    static constexpr Duration watch_interval = std::chrono::milliseconds(500);

    BmsClient(Bus& bus, std::string service, bool fake, Logger log)
        : bus_(bus), service_(std::move(service)), fake_(fake), log_(std::move(log)) {}

    /// Before the first use: the service is on the bus, has the interface on
    /// /bms and at least one battery. Throws std::runtime_error with a clear
    /// reason otherwise (analyze is refused).
    Task<void> connect();

    const std::string& service() const { return service_; }

    Task<CellLimits> limits() override;
    Task<CellVoltages> voltages() override;
    Task<Work> work(bool poll, bool clear) override;
    Task<bool> set_capacity(double cap, double loss, bool top) override;
    Task<std::string> lost() override;

private:
    /// `method` on `path` of the BMS; a failure becomes ModeAbort.
    Task<std::vector<Value>> call(const char* path, const char* method, std::string signature = {},
                                  std::vector<Value> args = {});
    /// Battery 0's entry of a per-battery list (GetVoltages, GetWork).
    const Value::Dict& battery0(const std::vector<Value>& reply, const char* method) const;
    /// The unique name owning the service now; throws DBusError when none.
    Task<std::string> owner();

    Bus& bus_;
    std::string service_;
    std::string owner_;  ///< at connect(): a new owner is another process (its records are gone)
    bool fake_;
    Logger log_;
    Work baseline_;  ///< fake mode: the BMS's counters at the last "clear"
};

} // namespace moat::inverter
