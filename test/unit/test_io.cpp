// The SDK's I/O on the loop (moat/io.hpp): fd readiness, TCP on loopback,
// serial ports on a pty; callbacks fail their owner, never the loop.
#include <catch2/catch.hpp>

#include "recording_owner.hpp"

#include "moat/io.hpp"
#include "moat/task.hpp"

#include <fcntl.h>
#include <pty.h>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

using namespace moat;
using namespace std::chrono_literals;

namespace {

struct Pipe {
    int r = -1, w = -1;
    Pipe() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        r = fds[0];
        w = fds[1];
    }
    ~Pipe() {
        if (r >= 0) ::close(r);
        if (w >= 0) ::close(w);
    }
};

using test::RecordingOwner;

std::span<const std::uint8_t> bytes(const std::string& s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

/// Wait for `event`, failing the test instead of hanging when it never comes.
Task<void> wait_for(Event& event) { co_await event.wait(); }

Task<void> expect(Event& event, const char* what) {
    try {
        co_await with_timeout(10s, wait_for(event));
    } catch (const TimeoutError&) {
        FAIL(what);
    }
}

} // namespace

TEST_CASE("an fd watch reports readable data and stops when told", "[io]") {
    Loop loop;
    Pipe p;
    std::string got;
    Event done;
    FdWatch watch(loop, p.r, "pipe");
    watch.start(FdWatch::readable, [&](unsigned events, const std::string& error) {
        CHECK(error.empty());
        CHECK((events & FdWatch::readable) != 0);
        char buf[16];
        const auto n = ::read(p.r, buf, sizeof buf);
        if (n > 0) got.append(buf, std::size_t(n));
        if (got == "hello") {
            watch.stop();
            done.set();
        }
    });
    CHECK(watch.active());
    REQUIRE(::write(p.w, "hello", 5) == 5);
    run_until_complete(loop, expect(done, "no readable event"));
    CHECK(got == "hello");
    CHECK_FALSE(watch.active());
    // Stopped: more data wakes nothing, and the loop has nothing left to wait for.
    REQUIRE(::write(p.w, "more", 4) == 4);
    loop.run_once_nowait();
    CHECK(got == "hello");
}

TEST_CASE("a watch destroyed in its own callback calls nothing more", "[io]") {
    Loop loop;
    Pipe p;
    int calls = 0;
    Event done;
    auto watch = std::make_unique<FdWatch>(loop, p.r, "pipe");
    watch->start(FdWatch::readable, [&](unsigned, const std::string&) {
        ++calls;
        watch.reset();
        done.set();
    });
    REQUIRE(::write(p.w, "x", 1) == 1);
    run_until_complete(loop, expect(done, "no readable event"));
    loop.run_once_nowait();
    CHECK(calls == 1);
}

TEST_CASE("a regular file cannot be watched: IoError names it", "[io]") {
    Loop loop;
    char path[] = "/tmp/moat-io-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    CHECK_THROWS_WITH(FdWatch(loop, fd, path), Catch::Contains(std::string("cannot watch ") + path));
    ::close(fd);
    ::unlink(path);
}

TEST_CASE("an exception escaping an fd watch callback fails the owner that started it", "[io]") {
    Loop loop;
    Pipe p;
    auto owner = std::make_shared<RecordingOwner>();
    FdWatch watch(loop, p.r, "pipe");
    Event done;
    auto body = [&]() -> Task<void> {
        detail::Fiber& f = co_await detail::this_fiber();
        f.owner = owner;
        watch.start(FdWatch::readable, [&](unsigned, const std::string&) {
            watch.stop();
            done.set();
            throw std::runtime_error("plugin bug");
        });
        REQUIRE(::write(p.w, "x", 1) == 1);
        co_await expect(done, "no readable event");
    };
    run_until_complete(loop, body());
    CHECK(owner->failures == std::vector<std::string>{"an fd watch callback: plugin bug"});
}

TEST_CASE("TCP on loopback: connect, both directions, the peer's close", "[io]") {
    Loop loop;
    std::vector<TcpConnection> server_side;
    std::string server_got, client_got, client_closed = "(not closed)";
    Event connected, echoed, closed;
    TcpListener listener(loop, "127.0.0.1", 0, [&](TcpConnection c) {
        TcpConnection::Handlers h;
        h.data = [&](std::span<const std::uint8_t> b) {
            server_got.append(b.begin(), b.end());
            if (server_got == "ping") {
                server_side.back().write(bytes("pong"));
                server_side.back().close();  // the client sees the end after the data
            }
        };
        server_side.push_back(std::move(c));
        server_side.back().start(std::move(h));
    });
    REQUIRE(listener.port() != 0);
    TcpConnection::Handlers h;
    h.connected = [&] { connected.set(); };
    h.data = [&](std::span<const std::uint8_t> b) {
        client_got.append(b.begin(), b.end());
        if (client_got == "pong") echoed.set();
    };
    h.closed = [&](const std::string& error) {
        client_closed = error;
        closed.set();
    };
    auto client = TcpConnection::connect(loop, "127.0.0.1", listener.port(), std::move(h));
    CHECK(client.is_open());
    auto body = [&]() -> Task<void> {
        co_await expect(connected, "not connected");
        client.write(bytes("ping"));
        co_await expect(echoed, "no reply");
        co_await expect(closed, "the peer's close was not seen");
    };
    run_until_complete(loop, body());
    CHECK(server_got == "ping");
    CHECK(client_closed.empty());  // empty: the peer closed it, no error
    CHECK_FALSE(client.is_open());
}

TEST_CASE("TCP: a refused connection ends with the reason; a name is not an address", "[io]") {
    Loop loop;
    std::uint16_t free_port;
    {
        TcpListener probe(loop, "127.0.0.1", 0, [](TcpConnection) {});
        free_port = probe.port();
    }
    loop.run_once_nowait();  // the closed listener is released
    std::string reason;
    bool connected = false;
    Event closed;
    TcpConnection::Handlers h;
    h.connected = [&] { connected = true; };
    h.closed = [&](const std::string& error) {
        reason = error;
        closed.set();
    };
    auto c = TcpConnection::connect(loop, "127.0.0.1", free_port, std::move(h));
    run_until_complete(loop, expect(closed, "no end of a refused connection"));
    CHECK_FALSE(connected);
    CHECK_THAT(reason, Catch::Contains("refused"));
    CHECK_THROWS_WITH(TcpConnection::connect(loop, "meter.local", 502, {}),
                      "'meter.local' is not a numeric IPv4 or IPv6 address");
    CHECK_THROWS_WITH(TcpListener(loop, "256.1.1.1", 0, [](TcpConnection) {}), Catch::Contains("cannot listen on 256.1.1.1:0"));
}

TEST_CASE("a TCP connection closed by its owner calls nothing more", "[io]") {
    Loop loop;
    std::vector<TcpConnection> server_side;
    Event accepted;
    TcpListener listener(loop, "127.0.0.1", 0, [&](TcpConnection c) {
        server_side.push_back(std::move(c));
        server_side.back().start({});
        accepted.set();
    });
    int calls = 0;
    TcpConnection::Handlers h;
    h.data = [&](std::span<const std::uint8_t>) { ++calls; };
    h.closed = [&](const std::string&) { ++calls; };
    auto c = TcpConnection::connect(loop, "127.0.0.1", listener.port(), std::move(h));
    run_until_complete(loop, expect(accepted, "not accepted"));
    c.close();
    server_side.back().write(bytes("late"));
    server_side.clear();
    for (int i = 0; i < 5; ++i) loop.run_once_nowait();
    CHECK(calls == 0);
    CHECK_FALSE(c.is_open());
}

TEST_CASE("serial ports: raw on a pty, exclusive, clear errors", "[io]") {
    int master = -1, slave = -1;
    char name[256] = {};
    REQUIRE(::openpty(&master, &slave, name, nullptr, nullptr) == 0);
    const std::string path = name;
    const int fd = open_serial(path, SerialOptions{19200, 'E', 1, true});
    REQUIRE(fd >= 0);
    CHECK((::fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    CHECK_THROWS_AS(open_serial(path, SerialOptions{19200, 'E', 1, true}), PortBusy);
    CHECK_THROWS_WITH(open_serial(path, SerialOptions{19200, 'E', 1, true}), "port busy: " + path);
    ::close(fd);
    CHECK_THROWS_WITH(open_serial(path, SerialOptions{12345, 'N', 1, false}), "unsupported baud rate 12345");
    CHECK_THROWS_WITH(open_serial(path, SerialOptions{9600, 'X', 1, false}), path + ": parity must be N, E or O");
    CHECK_THROWS_WITH(open_serial("/nonexistent/tty", SerialOptions{}), Catch::StartsWith("cannot open /nonexistent/tty: "));
    CHECK_THROWS_WITH(open_serial("/dev/null", SerialOptions{}), Catch::StartsWith("/dev/null is not a serial port: "));
    ::close(master);
    ::close(slave);
}
