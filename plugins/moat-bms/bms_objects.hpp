// org.m_o_a_t.bms on /bms (the controller), /bms/0 (the battery) and
// /bms/0/<i> (each cell), on the battery service's connection: what the
// inverter controller's `analyze`, the watcher script and the installation
// procedure call. Errors are org.m_o_a_t.bms.Error.<Kind>.
//
// The SDK's exported methods answer synchronously: the "live" methods
// (GetRelayState, a cell's GetVoltage, GetWork with poll) answer from the
// latest periodic readings, and writes to the controller (rly, the ring) are
// queued on the session and answered at once (SetVoltage, SetCurrent,
// SetCurrentOffset and SetExternalVoltage compute the new value from the
// latest reading at once, then queue its write).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <moat/config.hpp>
#include <moat/dbus.hpp>
#include <moat/log.hpp>

#include "battery_session.hpp"
#include "bms_battery.hpp"

namespace moat::bms {

class BmsObjects {
public:
    static constexpr const char* interface = "org.m_o_a_t.bms";

    BmsObjects(Loop& loop, Bus& bus, BmsBattery& battery, const Config& config, Logger log);
    ~BmsObjects();

    /// Export the objects (once; the cells for up to batt.n = 32).
    void publish();
    /// The live session (nullptr while the link is down).
    void set_session(LinkSession* s) { session_ = s; }
    /// The hooks the session calls.
    const SessionEvents& events() const { return events_; }

private:
    void add_controller(DBusObject& o);
    void add_battery(DBusObject& o);
    void add_cell(DBusObject& o, int index);
    Value voltages() const;
    Value work_of(bool clear);
    battery::Battery& model() const;
    LinkSession& session() const;
    int cells() const;
    /// A number of the controller's app configuration (`batt.u.scale`).
    double key_or(const std::string& key, double fallback) const;
    /// Send `app.key = value` to the controller (stored when persist_changes).
    void set_key(const std::string& key, double value);

    Loop& loop_;
    Bus& bus_;
    BmsBattery& battery_;
    const Config& config_;
    Logger log_;
    LinkSession* session_ = nullptr;
    SessionEvents events_;
    std::optional<PackInfo> last_pack_;
    std::vector<std::unique_ptr<DBusObject>> objects_;
};

} // namespace moat::bms
