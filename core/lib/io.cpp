#include "moat/io.hpp"

#include "uv_loop.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace moat {

namespace {

template <class Handle> void close_handle(Handle* h, void (*done)(uv_handle_t*)) {
    auto* base = reinterpret_cast<uv_handle_t*>(h);
    if (!uv_is_closing(base)) uv_close(base, done);
}

std::string uv_text(int rc) { return uv_strerror(rc); }

} // namespace

// ---- FdWatch ----

struct FdWatch::Impl {
    uv_poll_t handle{};
    Loop* loop;
    Callback fn;
    Loop::CallbackOrigin origin;
    bool active = false;

    static void on_poll(uv_poll_t* h, int status, int events) {
        auto* self = static_cast<Impl*>(h->data);
        if (!self->fn) return;
        unsigned ready = 0;
        std::string error;
        if (status < 0) {
            // libuv reports POLLERR (a hung-up pty, an unplugged adapter) as
            // an error status; the watch stops.
            error = uv_text(status);
            uv_poll_stop(h);
            self->active = false;
        } else {
            if (events & UV_READABLE) ready |= readable;
            if (events & UV_WRITABLE) ready |= writable;
        }
        Callback fn = self->fn;  // the callback may stop or destroy the watch
        self->loop->invoke(self->origin, "an fd watch callback", [&] { fn(ready, error); });
    }
};

FdWatch::FdWatch(Loop& loop, int fd, const std::string& name) : impl_(new Impl{}) {
    impl_->loop = &loop;
    if (int rc = uv_poll_init(detail::uv_loop(loop), &impl_->handle, fd); rc != 0) {
        delete std::exchange(impl_, nullptr);
        throw IoError(fmt::format("cannot watch {}: {}", name, uv_text(rc)));
    }
    impl_->handle.data = impl_;
}

FdWatch::FdWatch(FdWatch&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}

FdWatch& FdWatch::operator=(FdWatch&& other) noexcept {
    if (this != &other) {
        this->~FdWatch();
        impl_ = std::exchange(other.impl_, nullptr);
    }
    return *this;
}

FdWatch::~FdWatch() {
    if (!impl_) return;
    Impl* i = std::exchange(impl_, nullptr);
    i->fn = nullptr;
    uv_poll_stop(&i->handle);
    // libuv needs the handle's memory until its close callback.
    close_handle(&i->handle, [](uv_handle_t* h) { delete static_cast<Impl*>(h->data); });
}

void FdWatch::start(unsigned events, Callback fn) {
    if (!impl_) throw std::logic_error("FdWatch::start on an empty watch");
    impl_->fn = std::move(fn);
    impl_->origin = impl_->loop->origin();
    int flags = 0;
    if (events & readable) flags |= UV_READABLE;
    if (events & writable) flags |= UV_WRITABLE;
    if (int rc = uv_poll_start(&impl_->handle, flags, &Impl::on_poll); rc != 0)
        throw IoError(fmt::format("cannot watch a descriptor: {}", uv_text(rc)));
    impl_->active = true;
}

void FdWatch::stop() {
    if (!impl_) return;
    uv_poll_stop(&impl_->handle);
    impl_->active = false;
}

bool FdWatch::active() const { return impl_ && impl_->active; }

// ---- TcpConnection ----

struct TcpConnection::Impl {
    uv_tcp_t tcp{};
    uv_connect_t connect{};
    Loop* loop;
    Handlers handlers;
    Loop::CallbackOrigin origin;
    bool ended = false;

    void run(const char* where, const std::function<void()>& fn) { loop->invoke(origin, where, fn); }

    /// The connection is over (by the peer, an error, or a failed connect):
    /// tell the owner once; the handle is released when the owner lets go.
    void end(const std::string& error) {
        if (ended) return;
        ended = true;
        uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp));
        auto closed = std::move(handlers.closed);
        handlers = {};
        if (closed) run("a TCP callback", [&] { closed(error); });
    }

    void start_reading() {
        int rc = uv_read_start(
            reinterpret_cast<uv_stream_t*>(&tcp),
            [](uv_handle_t*, size_t suggested, uv_buf_t* buf) {
                buf->base = new char[suggested];
                buf->len = suggested;
            },
            [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
                auto* self = static_cast<Impl*>(s->data);
                std::unique_ptr<char[]> owned(buf->base);
                if (self->ended) return;
                if (n > 0) {
                    auto data = self->handlers.data;
                    if (data)
                        self->run("a TCP data callback", [&] {
                            data(std::span(reinterpret_cast<const std::uint8_t*>(owned.get()), std::size_t(n)));
                        });
                } else if (n < 0) {
                    self->end(n == UV_EOF ? std::string() : uv_text(int(n)));
                }
            });
        if (rc != 0) end(uv_text(rc));
    }

    static void release(uv_handle_t* h) { delete static_cast<Impl*>(h->data); }
};

TcpConnection::TcpConnection(TcpConnection&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}

TcpConnection& TcpConnection::operator=(TcpConnection&& other) noexcept {
    if (this != &other) {
        close();
        impl_ = std::exchange(other.impl_, nullptr);
    }
    return *this;
}

TcpConnection::~TcpConnection() { close(); }

void TcpConnection::close() {
    if (!impl_) return;
    Impl* i = std::exchange(impl_, nullptr);
    i->handlers = {};
    i->ended = true;
    // A pending connect ends with UV_ECANCELED before the close callback.
    close_handle(&i->tcp, &Impl::release);
}

bool TcpConnection::is_open() const { return impl_ && !impl_->ended; }

TcpConnection TcpConnection::connect(Loop& loop, const std::string& host, std::uint16_t port, Handlers handlers) {
    sockaddr_storage addr{};
    if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) != 0 &&
        uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0)
        throw IoError(fmt::format("'{}' is not a numeric IPv4 or IPv6 address", host));
    TcpConnection c;
    c.impl_ = new Impl{};
    Impl* i = c.impl_;
    i->loop = &loop;
    i->handlers = std::move(handlers);
    i->origin = loop.origin();
    uv_tcp_init(detail::uv_loop(loop), &i->tcp);
    i->tcp.data = i;
    i->connect.data = i;
    uv_tcp_nodelay(&i->tcp, 1);
    int rc = uv_tcp_connect(&i->connect, &i->tcp, reinterpret_cast<const sockaddr*>(&addr), [](uv_connect_t* req, int status) {
        auto* self = static_cast<Impl*>(req->data);
        if (self->ended) return;  // closed meanwhile (UV_ECANCELED)
        if (status < 0) {
            self->end(uv_text(status));
            return;
        }
        self->start_reading();
        if (self->ended) return;
        auto connected = self->handlers.connected;
        if (connected) self->run("a TCP connect callback", connected);
    });
    if (rc != 0) throw IoError(fmt::format("cannot connect to {}:{}: {}", host, port, uv_text(rc)));
    return c;
}

void TcpConnection::start(Handlers handlers) {
    if (!impl_ || impl_->ended) return;
    impl_->handlers = std::move(handlers);
    impl_->origin = impl_->loop->origin();
    impl_->start_reading();
}

void TcpConnection::write(std::span<const std::uint8_t> bytes) {
    if (!impl_ || impl_->ended) return;
    struct Write {
        uv_write_t req;
        std::vector<std::uint8_t> data;
        Impl* conn;
    };
    auto* w = new Write{{}, std::vector<std::uint8_t>(bytes.begin(), bytes.end()), impl_};
    w->req.data = w;
    uv_buf_t buf = uv_buf_init(reinterpret_cast<char*>(w->data.data()), unsigned(w->data.size()));
    // A write still queued when the connection is closed completes with
    // UV_ECANCELED before the handle's close callback: `conn` is still valid.
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&impl_->tcp), &buf, 1, [](uv_write_t* req, int status) {
        std::unique_ptr<Write> w(static_cast<Write*>(req->data));
        if (status < 0 && status != UV_ECANCELED) w->conn->end(uv_text(status));
    });
    if (rc != 0) {
        delete w;
        impl_->end(uv_text(rc));
    }
}

// ---- TcpListener ----

struct TcpListener::Impl {
    uv_tcp_t tcp{};
    Loop* loop;
    Accepted accepted;
    Loop::CallbackOrigin origin;
};

TcpListener::TcpListener(Loop& loop, const std::string& host, std::uint16_t port, Accepted accepted) : impl_(new Impl{}) {
    impl_->loop = &loop;
    impl_->accepted = std::move(accepted);
    impl_->origin = loop.origin();
    uv_tcp_init(detail::uv_loop(loop), &impl_->tcp);
    impl_->tcp.data = impl_;
    sockaddr_storage addr{};
    int rc = uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr));
    if (rc != 0) rc = uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr));
    if (rc == 0) rc = uv_tcp_bind(&impl_->tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
    if (rc == 0)
        rc = uv_listen(reinterpret_cast<uv_stream_t*>(&impl_->tcp), 8, [](uv_stream_t* s, int status) {
            auto* self = static_cast<Impl*>(s->data);
            if (status < 0 || !self->accepted) return;
            auto* c = new TcpConnection::Impl{};
            c->loop = self->loop;
            uv_tcp_init(s->loop, &c->tcp);
            c->tcp.data = c;
            if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
                close_handle(&c->tcp, &TcpConnection::Impl::release);
                return;
            }
            uv_tcp_nodelay(&c->tcp, 1);
            TcpConnection conn;
            conn.impl_ = c;
            auto accepted = self->accepted;
            self->loop->invoke(self->origin, "a TCP accept callback", [&] { accepted(std::move(conn)); });
        });
    if (rc != 0) {
        close();
        throw IoError(fmt::format("cannot listen on {}:{}: {}", host, port, uv_text(rc)));
    }
}

TcpListener::TcpListener(TcpListener&& other) noexcept : impl_(std::exchange(other.impl_, nullptr)) {}

TcpListener& TcpListener::operator=(TcpListener&& other) noexcept {
    if (this != &other) {
        close();
        impl_ = std::exchange(other.impl_, nullptr);
    }
    return *this;
}

TcpListener::~TcpListener() { close(); }

void TcpListener::close() {
    if (!impl_) return;
    Impl* i = std::exchange(impl_, nullptr);
    i->accepted = nullptr;
    close_handle(&i->tcp, [](uv_handle_t* h) { delete static_cast<Impl*>(h->data); });
}

std::uint16_t TcpListener::port() const {
    if (!impl_) return 0;
    sockaddr_storage bound{};
    int len = sizeof bound;
    if (uv_tcp_getsockname(&impl_->tcp, reinterpret_cast<sockaddr*>(&bound), &len) != 0) return 0;
    if (bound.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    return ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

// ---- serial ports ----

namespace {

speed_t speed_of(int baud) {
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
    default: throw IoError(fmt::format("unsupported baud rate {}", baud));
    }
}

} // namespace

int open_serial(const std::string& path, const SerialOptions& options) {
    const speed_t speed = speed_of(options.baud);
    if (options.parity != 'N' && options.parity != 'E' && options.parity != 'O')
        throw IoError(fmt::format("{}: parity must be N, E or O", path));
    if (options.stop_bits != 1 && options.stop_bits != 2) throw IoError(fmt::format("{}: stop bits must be 1 or 2", path));
    const int fd = ::open(path.c_str(), O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        if (errno == EBUSY && options.exclusive) throw PortBusy(path);
        throw IoError(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
    }
    auto fail = [&](std::string message) {
        ::close(fd);
        throw IoError(std::move(message));
    };
    if (options.exclusive) {
        // flock keeps out another program that locks; TIOCEXCL refuses any
        // further open() of the tty (but root's).
        if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
            const int e = errno;
            ::close(fd);
            if (e == EWOULDBLOCK) throw PortBusy(path);
            throw IoError(fmt::format("cannot lock {}: {}", path, std::strerror(e)));
        }
    }
    termios t{};
    if (::tcgetattr(fd, &t) != 0) fail(fmt::format("{} is not a serial port: {}", path, std::strerror(errno)));
    if (options.exclusive && ::ioctl(fd, TIOCEXCL) < 0) fail(fmt::format("cannot lock {}: {}", path, std::strerror(errno)));
    ::cfmakeraw(&t);
    t.c_cflag &= ~tcflag_t(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
    t.c_cflag |= CS8 | CLOCAL | CREAD;
    if (options.parity != 'N') t.c_cflag |= PARENB;
    if (options.parity == 'O') t.c_cflag |= PARODD;
    if (options.stop_bits == 2) t.c_cflag |= CSTOPB;
    t.c_iflag &= ~tcflag_t(IXON | IXOFF | IXANY);
    // VMIN 1: a read with nothing to read fails with EAGAIN (non-blocking),
    // so 0 means end of file (a hung-up tty), as on any other descriptor.
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    ::cfsetispeed(&t, speed);
    ::cfsetospeed(&t, speed);
    if (::tcsetattr(fd, TCSANOW, &t) != 0) fail(fmt::format("cannot configure {}: {}", path, std::strerror(errno)));
    ::tcflush(fd, TCIOFLUSH);
    return fd;
}

} // namespace moat
