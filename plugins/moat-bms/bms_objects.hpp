// org.m_o_a_t.bms on /bms (the controller), /bms/0 (the battery) and
// /bms/0/<i> (each cell), on the battery service's connection: what the
// inverter controller's `analyze`, the watcher script and the installation
// procedure call. Errors are org.m_o_a_t.bms.Error.<Kind>.
//
// "Live" methods ask the controller or the cells before they answer. They
// run as tasks of the link session (serve()), so a session that ends takes
// them with it and they answer LinkDown; each is bounded (Timeout). Writes
// of the controller's configuration (calibration, capacity) are queued on
// the session and answered at once.
#pragma once

#include <deque>
#include <functional>
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
    /// Bounds of a live call: an RPC to the controller, and one to the ring.
    static constexpr Duration rpc_bound = std::chrono::seconds(5);
    static constexpr Duration ring_bound = std::chrono::seconds(10);

    BmsObjects(Loop& loop, Bus& bus, BmsBattery& battery, const Config& config, Logger log);
    ~BmsObjects();

    /// Export the objects (once; the cells for up to batt.n = 32).
    void publish();
    /// The live session (nullptr while the link is down: queued live calls fail).
    void set_session(LinkSession* s);
    /// The live calls of session `s`; runs until cancelled (with the session).
    Task<void> serve(LinkSession& s);
    /// The hooks the session calls.
    const SessionEvents& events() const { return events_; }

private:
    struct LiveCall;
    using LiveOp = std::function<Task<void>(LinkSession&)>;

    void add_controller(DBusObject& o);
    void add_battery(DBusObject& o);
    void add_battery_live(DBusObject& o);
    void add_cell(DBusObject& o, int index);
    void add_cell_live(DBusObject& o, int index);
    void emit_pack(const PackInfo& p);
    void emit_cells();
    void emit_temperatures();
    /// Run `op` on the session, bounded by `bound`; LinkDown, Timeout, Internal.
    Task<void> live(LiveOp op, Duration bound);
    /// Reads a module's reply inside the session (it may read the session's configuration).
    using CellReader = std::function<void(const LinkSession&, const cell::Reply&)>;
    /// One request to one module, live and bounded by the ring: true when the
    /// module answered (after `read` took its reply), false when it did not
    /// see the request ("not seen" is the method's own answer, not an error).
    Task<bool> ask_cell(cell::CellRequest request, CellReader read = {});
    Task<void> run_live(LinkSession& s, std::shared_ptr<LiveCall> call);
    /// GetWork: with `poll` the controller's sums first (live).
    Task<Value> work(bool poll, bool clear);
    Value voltages() const;
    battery::Battery& model() const;
    battery::Battery& cell_model(int index) const;  ///< NoSuchCell past batt.n
    LinkSession& session() const;
    int cells() const;
    /// A number of the controller's app configuration (`batt.u.scale`).
    double key_or(const std::string& key, double fallback) const;
    /// Send `app.key = value` for each pair to the controller in one write
    /// (stored there when persist_changes).
    void set_keys(const std::vector<std::pair<std::string, double>>& keys);
    /// The cell voltage offset: `cell.u.offset` plus the cell's own (SetVoltageOffset).
    double cell_offset(int index) const;

    Loop& loop_;
    Bus& bus_;
    BmsBattery& battery_;
    const Config& config_;
    Logger log_;
    LinkSession* session_ = nullptr;
    SessionEvents events_;
    std::optional<PackInfo> last_pack_;
    std::deque<std::shared_ptr<LiveCall>> live_calls_;
    Event live_wake_;
    DBusObject* battery_object_ = nullptr;  ///< /bms/0, for its signals
    /// False once this object is being destroyed: a handler whose live call
    /// ended in that loop turn resumes after it and must touch nothing.
    std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
    std::vector<std::unique_ptr<DBusObject>> objects_;
};

} // namespace moat::bms
