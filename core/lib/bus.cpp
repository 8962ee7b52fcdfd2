#include "moat/bus.hpp"
#include "bus_call.hpp"
#include "value_dbus.hpp"
#include "uv_loop.hpp"

#include <poll.h>
#include <time.h>

namespace moat {

namespace {
// Bound the messages handled per wake-up so other handles are not starved.
constexpr int max_messages_per_wakeup = 64;
} // namespace

struct Bus::Handles {
    uv_poll_t poll{};
    uv_timer_t timer{};
    uv_prepare_t prepare{};
    int open = 0;
    Bus* bus = nullptr;
};

std::unique_ptr<Bus> Bus::open(Loop& loop, const std::string& spec, Logger log) {
    std::unique_ptr<sdbus::IConnection> conn;
    try {
        if (spec == "system") conn = sdbus::createSystemBusConnection();
        else if (spec == "session") conn = sdbus::createSessionBusConnection();
        else conn = sdbus::createSessionBusConnectionWithAddress(spec);
    } catch (const sdbus::Error& e) {
        throw BusError(fmt::format("cannot connect to the D-Bus {}: {}",
                                   spec == "system" || spec == "session" ? spec + " bus" : "bus at " + spec,
                                   e.getMessage()));
    }
    return std::unique_ptr<Bus>(new Bus(loop, std::move(conn), spec, std::move(log)));
}

std::unique_ptr<Bus> detail::BusAccess::unconnected(Loop& loop, Logger log) {
    return std::unique_ptr<Bus>(new Bus(loop, nullptr, "", std::move(log)));
}

sdbus::IConnection& detail::BusAccess::connection(Bus& bus) {
    if (!bus.conn_) throw BusError("no D-Bus connection (this command runs without the bus)");
    return *bus.conn_;
}

Bus::Bus(Loop& loop, std::unique_ptr<sdbus::IConnection> conn, std::string spec, Logger log)
    : loop_(loop), conn_(std::move(conn)), spec_(std::move(spec)), log_(std::move(log)), handles_(new Handles) {
    handles_->bus = this;
    if (!conn_) return;  // unconnected(): nothing to watch
    auto pd = conn_->getEventLoopPollData();
    uv_poll_init(detail::uv_loop(loop_), &handles_->poll, pd.fd);
    uv_timer_init(detail::uv_loop(loop_), &handles_->timer);
    uv_prepare_init(detail::uv_loop(loop_), &handles_->prepare);
    handles_->poll.data = handles_->timer.data = handles_->prepare.data = handles_;
    // Re-read sd-bus's wishes before every loop iteration: calls made from
    // other callbacks change them, and messages can wait in sd-bus's queue.
    uv_prepare_start(&handles_->prepare, [](uv_prepare_t* h) {
        auto* hs = static_cast<Handles*>(h->data);
        if (hs->bus) hs->bus->rearm();
    });
    // The prepare handle alone must not keep the loop alive.
    uv_unref(reinterpret_cast<uv_handle_t*>(&handles_->prepare));
    rearm();
}

Bus::~Bus() {
    handles_->bus = nullptr;
    if (!conn_) {
        delete handles_;
        return;
    }
    handles_->open = 3;
    auto closed = [](uv_handle_t* h) {
        auto* hs = static_cast<Handles*>(h->data);
        if (--hs->open == 0) delete hs;
    };
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->poll), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->timer), closed);
    uv_close(reinterpret_cast<uv_handle_t*>(&handles_->prepare), closed);
}

void Bus::rearm() {
    if (lost_) return;
    sdbus::IConnection::PollData pd;
    try {
        pd = conn_->getEventLoopPollData();
    } catch (const sdbus::Error& e) {
        lose(e.getMessage());
        return;
    }
    int events = UV_READABLE | ((pd.events & POLLOUT) ? UV_WRITABLE : 0);
    if (events != armed_events_) {
        armed_events_ = events;
        uv_poll_start(&handles_->poll, events, [](uv_poll_t* h, int, int) {
            auto* hs = static_cast<Handles*>(h->data);
            if (hs->bus) hs->bus->process();
        });
    }
    if (pd.timeout_usec == UINT64_MAX) {
        uv_timer_stop(&handles_->timer);
        return;
    }
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    std::uint64_t now_us = std::uint64_t(ts.tv_sec) * 1000000u + std::uint64_t(ts.tv_nsec) / 1000u;
    std::uint64_t ms = pd.timeout_usec <= now_us ? 0 : (pd.timeout_usec - now_us + 999) / 1000;
    uv_timer_start(&handles_->timer, [](uv_timer_t* h) {
        auto* hs = static_cast<Handles*>(h->data);
        if (hs->bus) hs->bus->process();
    }, ms, 0);
}

void Bus::process() {
    if (lost_) return;
    const char* was = loop_.running();
    loop_.set_running("D-Bus dispatch");
    try {
        for (int i = 0; i < max_messages_per_wakeup; ++i)
            if (!conn_->processPendingRequest()) break;
    } catch (const sdbus::Error& e) {
        lose(e.getName() == "org.freedesktop.DBus.Error.Disconnected" ? "disconnected by the bus daemon"
                                                                      : e.getName() + ": " + e.getMessage());
    } catch (const std::exception& e) {
        // A handler let something through that sdbus-c++ does not catch.
        log_.error("exception escaped a D-Bus handler: {}", e.what());
    }
    loop_.set_running(was);
}

void Bus::lose(const std::string& why) {
    if (lost_) return;
    lost_ = true;
    uv_poll_stop(&handles_->poll);
    uv_timer_stop(&handles_->timer);
    uv_prepare_stop(&handles_->prepare);
    log_.error("lost the D-Bus connection ({})", why);
    auto handlers = lost_handlers_;
    loop_.post([handlers, why] {
        for (auto& h : handlers) h(why);
    });
}

std::string Bus::unique_name() const { return conn_ ? conn_->getUniqueName() : std::string(); }

BusCall new_call(Bus& bus, const std::string& dest, const std::string& path, const std::string& iface,
                 const std::string& method) {
    BusCall c;
    c.proxy = sdbus::createProxy(detail::connection(bus), dest, path);
    c.msg = c.proxy->createMethodCall(iface, method);
    c.what = fmt::format("{} {} {}.{}", dest, path, iface, method);
    return c;
}

void BusCallAwaitable::start() {
    try {
        auto us = std::chrono::duration_cast<std::chrono::microseconds>(timeout_).count();
        pending_ = call_.proxy->callMethod(
            call_.msg,
            [this](sdbus::MethodReply& reply, const sdbus::Error* error) {
                if (error) error_ = *error;
                else reply_ = reply;
                complete();
            },
            std::uint64_t(us));
    } catch (const sdbus::Error& e) {
        error_ = e;
        complete();  // resumes on a later loop turn
    }
}

Task<SetValueResult> busitem_set_value(Bus& bus, std::string dest, std::string path, Value value, Duration timeout) {
    SetValueResult result;
    try {
        BusCall call = new_call(bus, dest, path, "com.victronenergy.BusItem", "SetValue");
        call.msg << to_variant(value);
        auto reply = co_await BusCallAwaitable(std::move(call), timeout);
        std::int32_t r = -1;
        reply >> r;
        result.code = r;
    } catch (const DBusError& e) {
        result.error = e.message();
    } catch (const sdbus::Error& e) {
        result.error = e.getMessage();
    }
    co_return result;
}

sdbus::MethodReply BusCallAwaitable::await_resume() {
    Suspension::await_resume();
    if (error_) throw DBusError(error_->getName(), fmt::format("{}: {}", call_.what, error_->getMessage()));
    return std::move(reply_);
}

} // namespace moat
