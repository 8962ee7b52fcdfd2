#include "link.hpp"

#include "rtu.hpp"
#include "tcp.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstring>
#include <fcntl.h>
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

speed_t speed_of(int baud)
{
    switch (baud) {
    case 1200: return B1200;
    case 2400: return B2400;
    case 4800: return B4800;
    case 9600: return B9600;
    case 19200: return B19200;
    case 38400: return B38400;
    case 57600: return B57600;
    case 115200: return B115200;
    case 230400: return B230400;
    default: throw LinkError(fmt::format("unsupported baud rate {}", baud));
    }
}

std::string errno_text(int e) { return std::strerror(e); }

} // namespace

struct RtuLink::Poll {
    uv_poll_t handle;
    RtuLink* owner;
};

RtuLink::RtuLink(Loop& loop, SerialOptions options, Logger log) : Link(loop, std::move(log)), options_(std::move(options))
{
    const speed_t speed = speed_of(options_.baud);
    if (options_.parity != 'N' && options_.parity != 'E' && options_.parity != 'O')
        throw LinkError(fmt::format("{}: parity must be N, E or O", options_.device));
    fd_ = ::open(options_.device.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd_ < 0) throw LinkError(fmt::format("cannot open {}: {}", options_.device, errno_text(errno)));
    termios t{};
    if (::tcgetattr(fd_, &t) != 0) {
        const int e = errno;
        ::close(fd_);
        throw LinkError(fmt::format("{} is not a serial port: {}", options_.device, errno_text(e)));
    }
    ::cfmakeraw(&t);
    t.c_cflag |= CLOCAL | CREAD;
    t.c_cflag &= ~(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
    t.c_cflag |= CS8;
    if (options_.parity != 'N') t.c_cflag |= PARENB;
    if (options_.parity == 'O') t.c_cflag |= PARODD;
    if (options_.stop_bits == 2) t.c_cflag |= CSTOPB;
    t.c_iflag &= ~(IXON | IXOFF | IXANY);
    t.c_cc[VMIN] = 0;
    t.c_cc[VTIME] = 0;
    ::cfsetispeed(&t, speed);
    ::cfsetospeed(&t, speed);
    if (::tcsetattr(fd_, TCSANOW, &t) != 0) {
        const int e = errno;
        ::close(fd_);
        throw LinkError(fmt::format("cannot configure {}: {}", options_.device, errno_text(e)));
    }
    ::tcflush(fd_, TCIOFLUSH);

    poll_ = new Poll{{}, this};
    if (int rc = uv_poll_init(loop_.uv(), &poll_->handle, fd_); rc != 0) {
        delete poll_;
        ::close(fd_);
        throw LinkError(fmt::format("cannot watch {}: {}", options_.device, uv_strerror(rc)));
    }
    poll_->handle.data = poll_;
    uv_poll_start(&poll_->handle, UV_READABLE, [](uv_poll_t* h, int status, int) {
        auto* p = static_cast<Poll*>(h->data);
        if (!p->owner) return;
        if (status >= 0) {
            p->owner->on_readable();
            return;
        }
        // libuv reports POLLERR (a hung-up pty, an unplugged adapter) as an
        // error status and has stopped the handle.
        p->owner->lost_ = fmt::format("{}: {}", p->owner->options_.device, uv_strerror(status));
        p->owner->wake_.notify();
    });
}

RtuLink::~RtuLink()
{
    poll_->owner = nullptr;
    uv_poll_stop(&poll_->handle);
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_->handle), [](uv_handle_t* h) { delete static_cast<Poll*>(h->data); });
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
        // 0 (a raw tty with VMIN = VTIME = 0) or EAGAIN: drained. But
        // "readable" with nothing to read is a hang-up (a pty whose master
        // closed), and EIO an unplugged USB adapter: either would wake us
        // without end. Stop watching; the link is lost.
        if ((n == 0 && !got) || (n < 0 && errno != EAGAIN)) {
            lost_ = n == 0 ? fmt::format("{} hung up", options_.device)
                           : fmt::format("reading {}: {}", options_.device, errno_text(errno));
            uv_poll_stop(&poll_->handle);
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

struct TcpLink::Conn {
    uv_tcp_t tcp;
    uv_connect_t connect;
    TcpLink* owner;
};

namespace {
struct WriteReq {
    uv_write_t req;
    std::vector<std::uint8_t> data;
};
} // namespace

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
    if (!conn_) return;
    if (!why.empty()) error_ = why;
    conn_->owner = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&conn_->tcp), [](uv_handle_t* h) { delete static_cast<Conn*>(h->data); });
    conn_ = nullptr;
    state_ = State::closed;
    rx_.clear();
    wake_.notify();
}

Task<void> TcpLink::connect(TimePoint deadline)
{
    sockaddr_storage addr{};
    if (uv_ip4_addr(host_.c_str(), port_, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(host_.c_str(), port_, reinterpret_cast<sockaddr_in6*>(&addr)) != 0)
        throw LinkError(fmt::format("'{}' is not a numeric IPv4 or IPv6 address", host_));
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
    conn_ = new Conn{};
    conn_->owner = this;
    conn_->tcp.data = conn_;
    conn_->connect.data = conn_;
    uv_tcp_init(loop_.uv(), &conn_->tcp);
    uv_tcp_nodelay(&conn_->tcp, 1);
    state_ = State::connecting;
    error_.clear();
    int rc = uv_tcp_connect(&conn_->connect, &conn_->tcp, reinterpret_cast<const sockaddr*>(&addr), [](uv_connect_t* req, int status) {
        auto* c = static_cast<Conn*>(req->data);
        TcpLink* self = c->owner;
        if (!self) return;
        if (status < 0) {
            self->close(fmt::format("cannot connect to {}: {}", self->describe(), uv_strerror(status)));
            return;
        }
        self->state_ = State::connected;
        uv_read_start(
            reinterpret_cast<uv_stream_t*>(&c->tcp),
            [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
                buf->base = new char[suggested];
                buf->len = suggested;
            },
            [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                auto* c = static_cast<Conn*>(s->data);
                TcpLink* self = c->owner;
                if (self && n > 0) {
                    if (self->rx_.size() < 4 * modbus::max_tcp_frame_size)
                        self->rx_.insert(self->rx_.end(), buf->base, buf->base + n);
                    self->wake_.notify();
                } else if (self && n < 0) {
                    self->close(n == UV_EOF ? fmt::format("{} closed the connection", self->describe())
                                            : fmt::format("{}: {}", self->describe(), uv_strerror(int(n))));
                }
                delete[] buf->base;
            });
        self->wake_.notify();
    });
    if (rc != 0) {
        close(fmt::format("cannot connect to {}: {}", describe(), uv_strerror(rc)));
        throw LinkError(error_);
    }
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
    auto* w = new WriteReq{{}, modbus::tcp_request(tid, unit, request)};
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->data.data()), unsigned(w->data.size()));
    if (int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&conn_->tcp), &buf, 1,
                          [](uv_write_t* req, int) { delete reinterpret_cast<WriteReq*>(req); });
        rc != 0) {
        delete w;
        close(fmt::format("writing to {}: {}", describe(), uv_strerror(rc)));
        throw LinkError(error_);
    }
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
