// The link state on D-Bus: a small service of its own, org.m_o_a_t.bms.<instance>,
// with /Link/Up, /Link/Reason and the counters, for tools and tests to watch.
//
// Not a com.victronenergy.battery.* service: Venus (systemcalc, the GUI)
// would take any such name for a battery and wait for its voltage and
// state of charge; the battery service that publishes those builds on this
// link later and keeps its own name across sessions.
#pragma once

#include <moat/service.hpp>

#include <memory>
#include <string>

#include "link_session.hpp"

namespace moat::bms {

class LinkStateService {
public:
    LinkStateService(Loop& loop, const std::string& instance, const std::string& bus_spec, Logger log);

    /// org.m_o_a_t.bms.<instance>, with every character a bus name element
    /// cannot hold replaced by '_'.
    static std::string name_for(const std::string& instance);

    /// Export the items and request the name.
    Task<void> start();
    /// Publish a new state.
    void publish(const LinkState& state);

private:
    Service service_;
};

} // namespace moat::bms
