// The link to the controller over time: one session at a time (open, drain,
// config fetch, self-test, is_up, keepalive), ended by end of file, an I/O
// error, `link false`, a timeout or too many decode errors; then every
// pending call fails and the link reconnects with back-off. It never throws
// to the host (only Cancelled): a battery keeps its D-Bus service across
// sessions and shows the link state instead.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <moat/log.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "device_client.hpp"
#include "frame_stream.hpp"
#include "packet_engine.hpp"
#include "rpc.hpp"
#include "transport.hpp"

namespace moat::bms {

struct SessionOptions {
    std::string device;              ///< a tty (exactly one of device and socket)
    std::string socket;              ///< a Unix socket
    bool guarded = true;             ///< 0xC1 framing (a device); plain msgpack (a socket)
    ClientOptions client;
    int resync_errors = 5;           ///< this many decode errors ...
    Duration resync_window = std::chrono::seconds(10);  ///< ... within this end the session
    Duration backoff_initial = std::chrono::seconds(1);
    double backoff_factor = 1.4;
    Duration backoff_max = std::chrono::seconds(20);
    Duration backoff_reset = std::chrono::seconds(60);  ///< up this long: the back-off starts over
    int ring_attempts = 10;
    Duration drain_silence = std::chrono::milliseconds(200);
    Duration drain_max = std::chrono::seconds(5);
    Duration config_retry = std::chrono::seconds(30);   ///< after a device configuration error
};

/// What the link is doing, for logs and (later) the bus.
struct LinkState {
    bool up = false;
    std::string reason;              ///< why it is down (or "up")
    std::uint64_t sessions = 0;      ///< sessions that came up
    std::uint64_t failures = 0;      ///< sessions that ended or never came up
    std::uint64_t decode_errors = 0;
    std::uint64_t console_lines = 0;
    Duration next_retry{0};
};

/// The device's configuration is unusable (a required key missing): not a link fault.
class DeviceConfigError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// One live session: what code running on the link uses.
struct LinkSession {
    DeviceClient& client;
    cell::PacketEngine& cells;
    const msgpack::Value& config;    ///< the device's configuration (kept current)
    Duration keepalive;              ///< live every poll.k / 2.1
    Duration info_timeout;           ///< poll.t x (2 poll.n + 4), at least 2 s
    std::string app;                 ///< the BMS app's name (its config subtree)
};

class Link {
public:
    /// Code to run while a session is up; when it returns the session ends normally.
    using OnUp = std::function<Task<void>(LinkSession&)>;
    /// Opens the transport; the default opens options.device / options.socket.
    using Opener = std::function<std::unique_ptr<ByteStream>(Loop&)>;

    Link(Loop& loop, SessionOptions opt, Logger log);

    /// Sessions with back-off, forever (until cancelled). Never throws anything else.
    Task<void> run(OnUp on_up);
    /// One session; returns when `on_up` returned, throws why the session ended.
    Task<void> run_once(OnUp on_up);

    const LinkState& state() const { return state_; }
    std::function<void(const LinkState&)> on_state;
    Opener opener;

private:
    Task<void> reader(ByteStream& stream, FrameStream& frames, RpcEngine& rpc);
    void publish();
    void console(const std::string& line, bool truncated);

    Loop& loop_;
    SessionOptions opt_;
    Logger log_;
    LinkState state_;
    std::deque<TimePoint> decode_errors_;
    TimePoint up_since_{};
    TimePoint console_window_{};
    int console_in_window_ = 0;
    int console_suppressed_ = 0;
};

} // namespace moat::bms
