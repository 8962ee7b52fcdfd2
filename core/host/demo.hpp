// What makes the demo (`moat-victron --demo`) something to talk to: its
// private bus address recorded where client commands find it (`--bus demo`).
#pragma once

#include <optional>
#include <string>

namespace moat {

/// Where a running demo records its bus address:
/// $XDG_RUNTIME_DIR/moat-victron/demo-bus, else /run/moat-victron/demo-bus
/// for root, else /tmp/moat-victron-<uid>/demo-bus.
std::string demo_bus_file();

/// `spec` with "demo" replaced by the running demo's bus address; throws
/// std::runtime_error ("no demo is running ...") when none is recorded.
std::string resolve_bus_spec(const std::string& spec);

/// Records `address` in demo_bus_file() while it lives; removes the record
/// only if it is still ours (a second demo may have replaced it).
class DemoBusRecord {
public:
    explicit DemoBusRecord(std::string address);
    ~DemoBusRecord();
    DemoBusRecord(const DemoBusRecord&) = delete;
    DemoBusRecord& operator=(const DemoBusRecord&) = delete;
    const std::string& file() const { return file_; }

private:
    std::string file_, address_;
};

} // namespace moat
