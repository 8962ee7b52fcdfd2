// A D-Bus connection (sdbus-c++) driven by the loop: no sdbus-c++ thread.
// Method calls are awaitable and cancellable. Every Venus service we export
// needs a connection of its own (consumers key a service by its connection's
// unique name); reading shares one.
#pragma once

#include "moat/export.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <sdbus-c++/sdbus-c++.h>

#include "moat/log.hpp"
#include "moat/task.hpp"

namespace moat {

/// The bus could not be reached or went away.
class MOAT_API BusError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A method call under construction: fill `msg` with `<<`, then Bus::call it.
struct MOAT_API BusCall {
    std::unique_ptr<sdbus::IProxy> proxy;  ///< keeps the pending reply alive
    sdbus::MethodCall msg;
    std::string what;                      ///< "dest path iface.method", for errors
};

class MOAT_API Bus {
public:
    static constexpr Duration default_timeout = std::chrono::seconds(5);

    /// Connect to "system", "session" or a D-Bus address ("unix:path=...").
    /// Throws BusError with the reason when the bus cannot be reached.
    static std::unique_ptr<Bus> open(Loop& loop, const std::string& spec, Logger log);
    ~Bus();
    Bus(const Bus&) = delete;
    Bus& operator=(const Bus&) = delete;

    sdbus::IConnection& connection() { return *conn_; }
    Loop& loop() { return loop_; }
    const std::string& spec() const { return spec_; }
    std::string unique_name() const { return conn_->getUniqueName(); }

    BusCall new_call(const std::string& dest, const std::string& path, const std::string& iface,
                     const std::string& method);

    /// The awaitable of call(): yields the reply, throws sdbus::Error for an
    /// error reply or timeout, Cancelled when its task is cancelled.
    class [[nodiscard]] Call final : public Suspension {
    public:
        Call(BusCall c, Duration timeout) : call_(std::move(c)), timeout_(timeout) {}
        sdbus::MethodReply await_resume();

    private:
        void start() override;
        void abort() override { pending_.cancel(); }
        BusCall call_;
        Duration timeout_;
        sdbus::PendingAsyncCall pending_;
        sdbus::MethodReply reply_;
        std::optional<sdbus::Error> error_;
    };
    Call call(BusCall c, Duration timeout = default_timeout) { return Call(std::move(c), timeout); }

    template <class... Args>
    Call call(const std::string& dest, const std::string& path, const std::string& iface, const std::string& method,
              Duration timeout, const Args&... args) {
        BusCall c = new_call(dest, path, iface, method);
        ((void)(c.msg << args), ...);
        return Call(std::move(c), timeout);
    }

    /// Called (on a later loop turn) when the connection is lost, with the reason.
    void on_lost(std::function<void(const std::string&)> fn) { lost_handlers_.push_back(std::move(fn)); }
    bool lost() const { return lost_; }

private:
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
