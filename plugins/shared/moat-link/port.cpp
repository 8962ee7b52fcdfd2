#include "port.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <unistd.h>

namespace moat::bms {

namespace {

[[noreturn]] void fail(const std::string& what)
{
    throw IoError(fmt::format("{}: {}", what, std::strerror(errno)));
}

/// The simulator's end of a pty pair: raw bytes (8N1; the speed is moot).
void make_raw(int fd, const std::string& path)
{
    termios t{};
    if (::tcgetattr(fd, &t) < 0) fail(path);
    ::cfmakeraw(&t);
    t.c_cflag &= ~tcflag_t(CSTOPB | PARENB | CRTSCTS | CSIZE);
    t.c_cflag |= CS8 | CLOCAL | CREAD;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    if (::tcsetattr(fd, TCSANOW, &t) < 0) fail(path);
}

} // namespace

int open_tty(const std::string& path)
{
    // 115200 Bd matters only to a real UART; USB CDC ignores it.
    return open_serial(path, moat::SerialOptions{115200, 'N', 1, true});
}

int connect_unix(const std::string& path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) throw IoError(path + ": socket path too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // Non-blocking: a connect to a listener whose backlog is full would
    // otherwise block the loop; it fails with EAGAIN instead (retried by the session).
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) fail(path);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        fail(path);
    }
    return fd;
}

int listen_unix(const std::string& path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof(addr.sun_path)) throw IoError(path + ": socket path too long");
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) fail(path);
    ::unlink(path.c_str());
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0 || ::listen(fd, 4) < 0) {
        const int e = errno;
        ::close(fd);
        errno = e;
        fail(path);
    }
    return fd;
}

Pty open_pty()
{
    Pty p;
    p.master = ::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (p.master < 0) fail("posix_openpt");
    char name[128];
    if (::grantpt(p.master) < 0 || ::unlockpt(p.master) < 0 || ::ptsname_r(p.master, name, sizeof name) != 0) {
        const int e = errno;
        ::close(p.master);
        errno = e;
        fail("pty");
    }
    p.slave_path = name;
    p.keep_slave = ::open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (p.keep_slave < 0) {
        const int e = errno;
        ::close(p.master);
        errno = e;
        fail(p.slave_path);
    }
    make_raw(p.keep_slave, p.slave_path);
    return p;
}

void replace_symlink(const std::string& target, const std::string& link)
{
    const std::string tmp = link + ".new";
    ::unlink(tmp.c_str());
    if (::symlink(target.c_str(), tmp.c_str()) < 0) fail(tmp);
    if (::rename(tmp.c_str(), link.c_str()) < 0) fail(link);
}

} // namespace moat::bms
