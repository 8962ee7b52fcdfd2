// The battery on the Victron bus: com.victronenergy.battery.<app>, every
// path DVCC, the GUI and the inverter controller read, filled from the
// battery model's outputs in one ItemsChanged per evaluation. The items exist
// from the start; the name is requested only once the model is ready with
// real values (consumers read /Capacity and the limits at once), kept across
// link sessions, and released on stop after the safe state was published.
#pragma once

#include <moat/service.hpp>

#include <optional>
#include <string>

#include "battery.hpp"

namespace moat::bms {

class BatteryService {
public:
    static constexpr std::int64_t product_id = 0x1E14A;

    BatteryService(Loop& loop, const std::string& app, const std::string& bus_spec, const std::string& connection,
                   const std::string& serial, Logger log);

    const std::string& name() const { return service_.name(); }
    bool registered() const { return service_.started(); }
    /// For org.m_o_a_t.bms on the same connection (the objects /bms...).
    Bus& bus() { return service_.bus(); }

    void set_device_instance(std::int64_t instance);
    /// Everything the model decides, in one batch. `config`: the battery's
    /// configuration (nullopt before the first valid fetch).
    void publish(const battery::Outputs& out, const battery::BatteryConfig* config,
                 const std::optional<battery::WorkRecord>& work);

    /// Request the name; throws std::runtime_error naming the owner when it is taken.
    Task<void> start();
    /// The name goes (the safe state must have been published before).
    Task<void> stop();

private:
    Service service_;
    Logger log_;
};

} // namespace moat::bms
