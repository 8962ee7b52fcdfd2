// The byte transport of the link on the loop: a connected file descriptor
// (a tty, a socket, a pty master) read and written without blocking.
//
// It watches the descriptor with the SDK's FdWatch (transport.cpp); the
// opening of ttys, sockets and ptys is in port.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <moat/io.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

namespace moat::bms {

/// A read or write failed (the message says which and why).
using IoError = moat::IoError;

class ByteStream {
public:
    /// Take ownership of the open descriptor `fd` (made non-blocking here).
    ByteStream(Loop& loop, int fd, std::string name);
    ~ByteStream();
    ByteStream(const ByteStream&) = delete;
    ByteStream& operator=(const ByteStream&) = delete;

    /// Wait for bytes and put them into `buf`; the count, 0 at end of file
    /// (a pty whose other side closed counts as end of file). Cancellable.
    /// Throws IoError. One reader at a time.
    Task<std::size_t> read(std::span<std::uint8_t> buf);
    /// Queue `bytes`; they are written as the descriptor accepts them, in
    /// order. Throws IoError when the descriptor failed or more than
    /// max_queued bytes wait (a peer that stopped reading).
    void write(std::span<const std::uint8_t> bytes);
    std::size_t queued() const;
    const std::string& name() const { return name_; }

    static constexpr std::size_t max_queued = 1 << 20;

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
    std::string name_;
};

/// A listening socket on the loop (the simulator's Unix socket).
class Listener {
public:
    /// Take ownership of the listening descriptor `fd`.
    Listener(Loop& loop, int fd, std::string name);
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;
    /// Wait for the next connection; its descriptor (the caller's). Cancellable; throws IoError.
    Task<int> accept();

    struct Impl;

private:
    std::unique_ptr<Impl> impl_;
};

} // namespace moat::bms
