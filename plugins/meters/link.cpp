#include "link.hpp"

#include "rtu.hpp"
#include "tcp.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <termios.h>
#include <unistd.h>

namespace moat::meters {

using namespace std::chrono_literals;
using modbus::ProtocolError;
using modbus::Request;
using modbus::Response;

// ---- Wakeup ----

void Wakeup::notify()
{
    if (waiter_) std::exchange(waiter_, nullptr)->wake(false);
    else pending_ = true;
}

void Wakeup::Wait::start()
{
    if (w_.pending_) {
        w_.pending_ = false;
        complete();
        return;
    }
    if (loop().clock().now() >= deadline_) {
        timed_out_ = true;
        complete();
        return;
    }
    w_.waiter_ = this;
    timer_ = Timer(loop().clock(), deadline_, [this] {
        if (w_.waiter_ == this) w_.waiter_ = nullptr;
        wake(true);
    });
}

void Wakeup::Wait::abort()
{
    if (w_.waiter_ == this) w_.waiter_ = nullptr;
    timer_.reset();
}

void Wakeup::Wait::wake(bool timed_out)
{
    timed_out_ = timed_out;
    timer_.reset();
    complete();
}

// ---- Link: one transaction at a time ----

Task<void> Link::acquire()
{
    if (!busy_) {
        busy_ = true;
        co_return;
    }
    Waiter w;
    queue_.push_back(&w);
    try {
        co_await w.turn.wait();
    } catch (const Cancelled&) {
        if (w.turn.is_set()) release();  // handed the link just as we were cancelled: pass it on
        else std::erase(queue_, &w);
        throw;
    }
}

void Link::release()
{
    if (queue_.empty()) {
        busy_ = false;
        return;
    }
    Waiter* next = queue_.front();
    queue_.pop_front();
    next->turn.set();  // busy_ stays true: the link goes straight to `next`
}

Task<Response> Link::transact(std::uint8_t unit, Request request, Duration timeout)
{
    co_await acquire();
    struct Release {
        Link& l;
        ~Release() { l.release(); }
    } release{*this};
    co_return co_await exchange(unit, request, timeout);
}

// ---- RTU ----

namespace {

std::string errno_text(int e) { return std::strerror(e); }

} // namespace

RtuLink::RtuLink(Loop& loop, RtuOptions options, Logger log) : Link(loop, std::move(log)), options_(std::move(options))
{
    try {
        fd_ = open_serial(options_.device, moat::SerialOptions{options_.baud, options_.parity, options_.stop_bits, false});
        watch_ = FdWatch(loop, fd_, options_.device);
    } catch (const IoError& e) {
        if (fd_ >= 0) ::close(fd_);
        throw LinkError(e.what());
    }
    watch_.start(FdWatch::readable, [this](unsigned, const std::string& error) {
        if (error.empty()) {
            on_readable();
            return;
        }
        // A hung-up pty or an unplugged adapter: the watch has stopped.
        lost_ = fmt::format("{}: {}", options_.device, error);
        wake_.notify();
    });
}

RtuLink::~RtuLink()
{
    watch_ = FdWatch();
    ::close(fd_);
}

std::string RtuLink::describe() const
{
    return fmt::format("RTU {} {} 8{}{}", options_.device, options_.baud, options_.parity, options_.stop_bits);
}

Duration RtuLink::char_time() const
{
    const int bits = 1 + 8 + (options_.parity == 'N' ? 0 : 1) + options_.stop_bits;
    return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(double(bits) / options_.baud));
}

void RtuLink::on_readable()
{
    std::uint8_t buf[512];
    bool got = false;
    for (;;) {
        const ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n > 0) {
            got = true;
            // A line that talks without end (noise, a wrong baud rate) cannot grow memory.
            if (rx_.size() < 4 * modbus::max_rtu_frame_size) rx_.insert(rx_.end(), buf, buf + n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        // EAGAIN: drained. 0 is the end of file: a hang-up (a pty whose
        // master closed); EIO an unplugged USB adapter. Either would wake
        // us without end: stop watching; the link is lost.
        if ((n == 0 && !got) || (n < 0 && errno != EAGAIN)) {
            lost_ = n == 0 ? fmt::format("{} hung up", options_.device)
                           : fmt::format("reading {}: {}", options_.device, errno_text(errno));
            watch_.stop();
        }
        break;
    }
    wake_.notify();
}

Task<void> RtuLink::wait_for_silence(TimePoint deadline)
{
    // Whatever is still on its way (a late reply, a reply to a request we gave
    // up on) must not be taken for the next reply: wait until the line has been
    // quiet for a while (at least 20 ms: USB adapters deliver in bursts).
    const Duration quiet = std::max<Duration>(20ms, 8 * char_time());
    for (;;) {
        rx_.clear();
        const TimePoint until = std::min(deadline, loop_.clock().now() + quiet);
        const bool more = co_await wake_.wait_until(until);
        if (!more) break;
        if (loop_.clock().now() >= deadline) break;
    }
    ::tcflush(fd_, TCIFLUSH);
    rx_.clear();
}

Task<Response> RtuLink::exchange(std::uint8_t unit, const Request& request, Duration timeout)
{
    // The inter-frame gap: 3.5 characters since the end of the last frame
    // (1.75 ms above 19200 Bd, as the standard says).
    const Duration gap = options_.baud > 19200 ? Duration(1750us) : 7 * char_time() / 2;
    if (!lost_.empty()) throw LinkError(lost_);
    if (dirty_) {
        co_await wait_for_silence(loop_.clock().now() + timeout);
        dirty_ = false;
    }
    if (loop_.clock().now() < quiet_until_) co_await sleep_for(quiet_until_ - loop_.clock().now());

    ::tcflush(fd_, TCIFLUSH);
    rx_.clear();
    wake_.reset();  // forget notifications about input that was just flushed
    dirty_ = true;  // until this transaction ends cleanly
    const auto frame = modbus::rtu_request(unit, request);
    std::size_t sent = 0;
    const TimePoint send_deadline = loop_.clock().now() + timeout;
    while (sent < frame.size()) {
        const ssize_t n = ::write(fd_, frame.data() + sent, frame.size() - sent);
        if (n > 0) {
            sent += std::size_t(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN) throw LinkError(fmt::format("writing to {}: {}", options_.device, errno_text(errno)));
        if (loop_.clock().now() >= send_deadline)
            throw TimeoutError(fmt::format("{}: the port takes no output", options_.device));
        co_await sleep_for(1ms);
    }
    // The frame leaves the UART after this many characters.
    const TimePoint sent_at = loop_.clock().now() + frame.size() * char_time();
    if (unit == modbus::broadcast_unit) {
        quiet_until_ = sent_at + gap + 100ms;  // slaves act on a broadcast: give them time
        dirty_ = false;
        co_return Response{};
    }
    const TimePoint deadline = sent_at + timeout;
    std::size_t need = modbus::rtu_response_size(request, {});
    for (;;) {
        need = modbus::rtu_response_size(request, rx_);
        if (rx_.size() >= need) {
            const std::size_t again = modbus::rtu_response_size(request, std::span(rx_).first(need));
            if (again == need) break;
            need = again;
            continue;
        }
        const bool woke = co_await wake_.wait_until(deadline);
        if (!lost_.empty()) throw LinkError(lost_);
        if (!woke) {
            if (rx_.empty())
                throw TimeoutError(fmt::format("no reply from unit {} to {}", unit, request.describe()));
            throw ProtocolError({modbus::Fault::truncated,
                                 fmt::format("reply from unit {} to {} ended after {} of {} bytes", unit,
                                             request.describe(), rx_.size(), need)});
        }
    }
    auto r = modbus::rtu_decode_response(unit, request, std::span(rx_).first(need));
    quiet_until_ = loop_.clock().now() + gap;
    if (!r) throw ProtocolError(r.error());
    if (rx_.size() == need) dirty_ = false;  // extra bytes: let the line settle before the next request
    co_return std::move(r).value();
}

// ---- TCP ----

TcpLink::TcpLink(Loop& loop, std::string host, std::uint16_t port, Logger log)
    : Link(loop, std::move(log)), host_(std::move(host)), port_(port)
{
}

TcpLink::~TcpLink() { close(""); }

std::string TcpLink::describe() const
{
    return host_.find(':') != std::string::npos ? fmt::format("TCP [{}]:{}", host_, port_)
                                                : fmt::format("TCP {}:{}", host_, port_);
}

void TcpLink::close(const std::string& why)
{
    if (state_ == State::closed) return;
    if (!why.empty()) error_ = why;
    conn_.close();
    state_ = State::closed;
    rx_.clear();
    wake_.notify();
}

Task<void> TcpLink::connect(TimePoint deadline)
{
    if (state_ == State::connecting) {
        // An earlier transaction started this connection and was cancelled: wait for it.
        while (state_ == State::connecting)
            if (!co_await wake_.wait_until(deadline)) {
                close(fmt::format("no connection to {} within the timeout", describe()));
                throw TimeoutError(error_);
            }
        if (state_ != State::connected) throw LinkError(error_);
        co_return;
    }
    error_.clear();
    TcpConnection::Handlers handlers;
    handlers.connected = [this] {
        state_ = State::connected;
        wake_.notify();
    };
    handlers.data = [this](std::span<const std::uint8_t> bytes) {
        if (rx_.size() < 4 * modbus::max_tcp_frame_size) rx_.insert(rx_.end(), bytes.begin(), bytes.end());
        wake_.notify();
    };
    handlers.closed = [this](const std::string& error) {
        if (state_ == State::connecting) close(fmt::format("cannot connect to {}: {}", describe(), error));
        else close(error.empty() ? fmt::format("{} closed the connection", describe()) : fmt::format("{}: {}", describe(), error));
    };
    try {
        conn_ = TcpConnection::connect(loop_, host_, port_, std::move(handlers));
    } catch (const IoError& e) {
        throw LinkError(e.what());
    }
    state_ = State::connecting;
    while (state_ == State::connecting) {
        if (!co_await wake_.wait_until(deadline)) {
            close(fmt::format("no connection to {} within the timeout", describe()));
            throw TimeoutError(error_);
        }
    }
    if (state_ != State::connected) throw LinkError(error_);
}

Task<Response> TcpLink::exchange(std::uint8_t unit, const Request& request, Duration timeout)
{
    const TimePoint deadline = loop_.clock().now() + timeout;
    if (state_ != State::connected) co_await connect(deadline);
    const std::uint16_t tid = ++transaction_;
    conn_.write(modbus::tcp_request(tid, unit, request));
    if (state_ != State::connected) throw LinkError(error_);  // the write failed at once
    if (unit == modbus::broadcast_unit) co_return Response{};
    for (;;) {
        if (state_ != State::connected) throw LinkError(error_);
        auto size = modbus::tcp_frame_size(rx_);
        if (!size && size.error().fault != modbus::Fault::truncated) {
            auto e = size.error();
            close("lost the framing: " + e.message());
            throw ProtocolError(e);
        }
        if (size && rx_.size() >= *size) {
            const std::vector<std::uint8_t> frame(rx_.begin(), rx_.begin() + std::ptrdiff_t(*size));
            rx_.erase(rx_.begin(), rx_.begin() + std::ptrdiff_t(*size));
            auto r = modbus::tcp_decode_response(tid, unit, request, frame);
            if (!r && r.error().fault == modbus::Fault::unexpected_transaction) {
                log_.debug("{}: dropped a late reply ({})", describe(), r.error().message());
                continue;
            }
            if (!r) throw ProtocolError(r.error());
            co_return std::move(r).value();
        }
        if (!co_await wake_.wait_until(deadline))
            throw TimeoutError(fmt::format("no reply from unit {} at {} to {}", unit, describe(), request.describe()));
    }
}

} // namespace moat::meters
