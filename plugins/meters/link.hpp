// Modbus I/O on the loop (DESIGN.md: "our own client"): one Link per serial
// port or TCP peer, one transaction at a time, every wait cancellable.
//
//     auto link = meters::TcpLink::create(ctx.loop, "10.0.0.5", 502, log);
//     modbus::Response r = co_await link->transact(1, modbus::Request::read_input(0, 2), 500ms);
//
// transact() queues behind the transaction in flight (FIFO), then sends the
// request and waits for the complete reply until `timeout` after the send.
// It returns the Response (registers, or an exception reply: a device that
// answers with an exception is there). It throws
// - moat::TimeoutError: no complete reply in time ("no reply from unit 1 to ...");
// - modbus::ProtocolError: a reply came but is wrong (bad CRC, short frame,
//   another unit, another function, a broken MBAP header);
// - LinkError: the port or connection could not be opened or was lost;
// - moat::Cancelled: its task was cancelled. The link stays usable: a reply
//   still on its way is discarded (RTU: the next transaction waits for line
//   silence first; TCP: replies with an old transaction id are dropped).
// Nothing here blocks: the tty and the socket are non-blocking and watched
// by libuv.
#pragma once

#include "block_plan.hpp"
#include "modbus.hpp"

#include <moat/io.hpp>
#include <moat/log.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

namespace moat::meters {

/// The port or connection failed (open, connect, read or write error, peer closed).
class LinkError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Wakes one waiting task from libuv callbacks; a wait ends at a deadline.
/// A notify() while nobody waits is remembered for the next wait.
class Wakeup {
public:
    Wakeup() = default;
    Wakeup(const Wakeup&) = delete;
    Wakeup& operator=(const Wakeup&) = delete;

    void notify();
    /// Forget a notification nobody waited for.
    void reset() { pending_ = false; }

    /// co_await: true when notified, false when `deadline` passed first.
    class [[nodiscard]] Wait final : public Suspension {
    public:
        Wait(Wakeup& w, TimePoint deadline) : w_(w), deadline_(deadline) {}
        bool await_resume() {
            Suspension::await_resume();
            return !timed_out_;
        }

    private:
        friend class Wakeup;
        void start() override;
        void abort() override;
        void wake(bool timed_out);
        Wakeup& w_;
        TimePoint deadline_;
        Timer timer_;
        bool timed_out_ = false;
    };
    Wait wait_until(TimePoint deadline) { return Wait(*this, deadline); }

private:
    Wait* waiter_ = nullptr;
    bool pending_ = false;
};

class Link {
public:
    explicit Link(Loop& loop, Logger log) : loop_(loop), log_(std::move(log)) {}
    virtual ~Link() = default;
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;

    /// One transaction (see the file comment). Unit 0 (broadcast) returns an
    /// empty Response without waiting for a reply.
    Task<modbus::Response> transact(std::uint8_t unit, modbus::Request request, Duration timeout);

    /// "RTU /dev/ttyUSB0 9600 8N1", "TCP 127.0.0.1:502".
    virtual std::string describe() const = 0;
    virtual Transport transport() const = 0;
    /// True when the link cannot work again (a serial port that reported an
    /// I/O error): open a new one.
    virtual bool lost() const { return false; }
    /// Transactions waiting (not counting the one in flight).
    std::size_t queued() const { return queue_.size(); }

protected:
    /// Send and receive; called with the link to itself.
    virtual Task<modbus::Response> exchange(std::uint8_t unit, const modbus::Request& request, Duration timeout) = 0;
    Loop& loop_;
    Logger log_;

private:
    struct Waiter {
        Event turn;
    };
    Task<void> acquire();
    void release();
    bool busy_ = false;
    std::deque<Waiter*> queue_;
};

struct RtuOptions {
    std::string device;       ///< "/dev/ttyUSB0"
    int baud = 9600;
    char parity = 'N';        ///< 'N', 'E' or 'O'
    int stop_bits = 1;        ///< 1 or 2
};

/// Modbus RTU on a tty: raw 8 data bits, non-blocking, watched on the loop.
class RtuLink final : public Link {
public:
    /// Opens and configures the port; throws LinkError naming the device.
    RtuLink(Loop& loop, RtuOptions options, Logger log);
    ~RtuLink() override;

    std::string describe() const override;
    Transport transport() const override { return Transport::rtu; }
    bool lost() const override { return !lost_.empty(); }
    /// One character on the line (start, 8 data, parity, stop bits).
    Duration char_time() const;

private:
    Task<modbus::Response> exchange(std::uint8_t unit, const modbus::Request& request, Duration timeout) override;
    Task<void> wait_for_silence(TimePoint deadline);
    void on_readable();

    RtuOptions options_;
    int fd_ = -1;
    FdWatch watch_;
    std::vector<std::uint8_t> rx_;
    Wakeup wake_;
    TimePoint quiet_until_{};
    bool dirty_ = false;  ///< the last transaction did not end cleanly
    std::string lost_;    ///< why the port stopped working (open a new link)
};

/// Modbus TCP: connects on first use and again after the connection was
/// lost; a numeric IPv4 or IPv6 address.
class TcpLink final : public Link {
public:
    TcpLink(Loop& loop, std::string host, std::uint16_t port, Logger log);
    ~TcpLink() override;

    std::string describe() const override;
    Transport transport() const override { return Transport::tcp; }
    bool connected() const { return state_ == State::connected; }

private:
    enum class State { closed, connecting, connected };
    Task<modbus::Response> exchange(std::uint8_t unit, const modbus::Request& request, Duration timeout) override;
    Task<void> connect(TimePoint deadline);
    void close(const std::string& why);

    std::string host_;
    std::uint16_t port_;
    State state_ = State::closed;
    TcpConnection conn_;
    std::string error_;  ///< why the last connection attempt or connection failed
    std::vector<std::uint8_t> rx_;
    Wakeup wake_;
    std::uint16_t transaction_ = 0;
};

} // namespace moat::meters
