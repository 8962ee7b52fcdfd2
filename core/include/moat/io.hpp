// I/O on the loop without a third-party type: readiness of a file descriptor,
// TCP connections and listeners, serial ports.
//
// Callbacks run on the loop as the code that set them up (a plugin's
// instance): an exception escaping one is that instance's failure, never the
// host's. Every object here is move-only RAII: once destroyed or closed it
// calls nothing any more, and what the loop still holds is released by the
// library.
#pragma once

#include "moat/export.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <stdexcept>
#include <string>

#include "moat/loop.hpp"

namespace moat {

/// An I/O object could not be set up (open, configure, connect, listen); the
/// message says what and why.
class MOAT_API IoError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A serial port another program (or another instance) holds exclusively.
class MOAT_API PortBusy : public IoError {
public:
    explicit PortBusy(const std::string& path) : IoError("port busy: " + path) {}
};

/// Readiness of a file descriptor. The descriptor stays the caller's (it is
/// not closed here); keep it open while the watch exists.
class MOAT_API FdWatch {
public:
    enum Events : unsigned { readable = 1u, writable = 2u };
    /// `events`: what is ready. `error`: empty, or why the descriptor cannot
    /// be watched any more (the watch has then stopped; e.g. a hung-up tty).
    using Callback = std::function<void(unsigned events, const std::string& error)>;

    FdWatch() = default;
    /// Throws IoError when `fd` cannot be watched (`name` goes into the message).
    FdWatch(Loop& loop, int fd, const std::string& name);
    FdWatch(FdWatch&& other) noexcept;
    FdWatch& operator=(FdWatch&& other) noexcept;
    ~FdWatch();

    /// Call `fn` whenever one of `events` is ready; replaces an earlier start.
    void start(unsigned events, Callback fn);
    void stop();
    bool active() const;
    explicit operator bool() const { return impl_ != nullptr; }

private:
    struct Impl;
    Impl* impl_ = nullptr;
};

/// A TCP connection: made by connect(), or handed over by a TcpListener.
class MOAT_API TcpConnection {
public:
    struct Handlers {
        std::function<void()> connected;                          ///< connect() succeeded
        std::function<void(std::span<const std::uint8_t>)> data;  ///< bytes arrived
        /// The connection ended, or connect() failed: `error` empty when the
        /// peer closed it. Nothing is called after this.
        std::function<void(const std::string& error)> closed;
    };

    TcpConnection() = default;
    TcpConnection(TcpConnection&& other) noexcept;
    TcpConnection& operator=(TcpConnection&& other) noexcept;
    ~TcpConnection();

    /// Start connecting to a numeric IPv4 or IPv6 address (IoError for
    /// anything else, and when the connect cannot even start).
    static TcpConnection connect(Loop& loop, const std::string& host, std::uint16_t port, Handlers handlers);
    /// An accepted connection: start reading into `handlers`.
    void start(Handlers handlers);
    /// Queue `bytes`; a failure arrives through `closed` (at once when the
    /// write cannot even be queued). Ignored once the connection has ended.
    void write(std::span<const std::uint8_t> bytes);
    /// Close now; no callback runs any more.
    void close();
    /// Connecting or connected (not ended, not closed).
    bool is_open() const;

private:
    friend class TcpListener;
    struct Impl;
    Impl* impl_ = nullptr;
};

/// A listening TCP socket.
class MOAT_API TcpListener {
public:
    using Accepted = std::function<void(TcpConnection connection)>;

    TcpListener() = default;
    /// Listen on `host`:`port` (a numeric address; port 0: any free port,
    /// see port()). Throws IoError when it cannot.
    TcpListener(Loop& loop, const std::string& host, std::uint16_t port, Accepted accepted);
    TcpListener(TcpListener&& other) noexcept;
    TcpListener& operator=(TcpListener&& other) noexcept;
    ~TcpListener();

    std::uint16_t port() const;
    void close();

private:
    struct Impl;
    Impl* impl_ = nullptr;
};

/// How a serial port is set up: raw bytes, no flow control, non-blocking.
struct SerialOptions {
    int baud = 9600;        ///< 1200 … 230400
    char parity = 'N';      ///< 'N', 'E' or 'O'
    int stop_bits = 1;      ///< 1 or 2 (8 data bits always)
    bool exclusive = false; ///< hold the port alone (lock and TIOCEXCL): else PortBusy
};

/// Open the tty at `path` as `options` say. The descriptor is the caller's
/// to close. Throws IoError (PortBusy when `exclusive` and held elsewhere).
MOAT_API int open_serial(const std::string& path, const SerialOptions& options);

} // namespace moat
