// A D-Bus connection driven by the loop (no thread of its own). Method calls
// with moat::Value arguments: moat/dbus.hpp. Every Venus service we export
// needs a connection of its own (consumers key a service by its connection's
// unique name); reading shares one.
#pragma once

#include "moat/export.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "moat/log.hpp"
#include "moat/sdbus_fwd.hpp"
#include "moat/task.hpp"

namespace moat {

/// The bus could not be reached or went away.
class MOAT_API BusError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

namespace detail { struct BusAccess; }  ///< the library's own calls (lib/bus_call.hpp)

class MOAT_API Bus {
public:
    static constexpr Duration default_timeout = std::chrono::seconds(5);

    /// Connect to "system", "session" or a D-Bus address ("unix:path=...").
    /// Throws BusError with the reason when the bus cannot be reached.
    static std::unique_ptr<Bus> open(Loop& loop, const std::string& spec, Logger log);
    ~Bus();
    Bus(const Bus&) = delete;
    Bus& operator=(const Bus&) = delete;

    Loop& loop() { return loop_; }
    const std::string& spec() const { return spec_; }
    std::string unique_name() const;

    /// Called (on a later loop turn) when the connection is lost, with the reason.
    void on_lost(std::function<void(const std::string&)> fn) { lost_handlers_.push_back(std::move(fn)); }
    bool lost() const { return lost_; }

private:
    friend struct detail::BusAccess;
    Bus(Loop& loop, std::unique_ptr<sdbus::IConnection> conn, std::string spec, Logger log);
    void process();
    void rearm();
    void lose(const std::string& why);

    struct Handles;
    Loop& loop_;
    std::unique_ptr<sdbus::IConnection> conn_;
    std::string spec_;
    Logger log_;
    Handles* handles_;
    int armed_events_ = -1;
    bool lost_ = false;
    std::vector<std::function<void(const std::string&)>> lost_handlers_;
};

} // namespace moat
