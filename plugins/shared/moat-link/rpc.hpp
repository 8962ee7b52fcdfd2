// The RPC layer of the link: requests {a, d, i}, replies {i, d} / {i, e},
// notifications {a, d}. One engine per link session: when the session ends,
// every pending call fails with LinkDown and later calls fail at once.
//
// The engine does no I/O: it hands encoded messages to `send` and is fed the
// decoded messages the stream produced (dispatch). Every call has a timeout;
// a timeout is a link fault (the session ends), reported through on_fault.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <moat/log.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "msgpack.hpp"

namespace moat::bms {

/// A path like ["batt","info"] (or the string forms "link", "ping").
using Path = msgpack::Value;
Path path(std::initializer_list<const char*> parts);
/// "batt.info" (for logs and dispatch); "?" when it is no path.
std::string path_name(const msgpack::Value& p);

/// The link is gone (or going): the call could not complete.
class LinkError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};
/// The session ended while the call was pending (or before it was made).
class LinkDown : public LinkError {
public:
    using LinkError::LinkError;
};
/// No reply in time: a link fault.
class RpcTimeout : public LinkError {
public:
    using LinkError::LinkError;
};
/// The device answered with `e`: the call failed, the link is fine.
class RemoteError : public std::runtime_error {
public:
    RemoteError(std::string path, std::string text)
        : std::runtime_error(path + ": " + text), path_(std::move(path)), text_(std::move(text)) {}
    const std::string& path() const { return path_; }
    const std::string& text() const { return text_; }

private:
    std::string path_, text_;
};
/// A reply of the wrong shape for its call: fails only that call.
class BadReply : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct RpcCounters {
    std::uint64_t calls = 0, replies = 0, remote_errors = 0, timeouts = 0;
    std::uint64_t unknown_replies = 0, duplicate_replies = 0, bad_messages = 0, notifications = 0;
};

class RpcEngine {
public:
    /// Hands one message to the transport; throws when it cannot be written.
    using Send = std::function<void(const msgpack::Value&)>;
    /// A notification (or a request) from the peer. For a request, the return
    /// value is the reply's `d`; throw RemoteError (or anything) to answer `e`.
    using Handler = std::function<msgpack::Value(const msgpack::Value& path, const msgpack::Value& data, bool is_request)>;

    RpcEngine(Clock& clock, Send send, Logger log) : clock_(clock), send_(std::move(send)), log_(std::move(log)) {}
    ~RpcEngine();
    RpcEngine(const RpcEngine&) = delete;
    RpcEngine& operator=(const RpcEngine&) = delete;

    void set_handler(Handler h) { handler_ = std::move(h); }
    /// Called once per timeout (with the path), so the session can end.
    void set_on_fault(std::function<void(const std::string&)> f) { on_fault_ = std::move(f); }

    /// Call `path` with `data`; the reply's `d`. Throws RemoteError, RpcTimeout, LinkDown.
    Task<msgpack::Value> call(Path path, msgpack::Value data, Duration timeout);
    /// Send a notification (no reply).
    void notify(Path path, msgpack::Value data);

    /// Feed one decoded message.
    void dispatch(const msgpack::Value& msg);
    /// The session ended: fail every pending call with LinkDown(reason); refuse new ones.
    void close(const std::string& reason);
    bool closed() const { return closed_; }

    /// Tests: the next id is `last` + 1 (wrapping at 2^31 - 1).
    void seed_ids(std::uint32_t last) { id_ = last; }
    std::size_t outstanding() const { return pending_.size(); }
    const RpcCounters& counters() const { return counters_; }

private:
    struct Pending;
    std::uint32_t next_id();
    void answered(std::uint32_t id);

    Clock& clock_;
    Send send_;
    Logger log_;
    Handler handler_;
    std::function<void(const std::string&)> on_fault_;
    std::map<std::uint32_t, std::shared_ptr<Pending>> pending_;
    std::vector<std::uint32_t> recent_;  ///< the last answered ids, to tell a duplicate from an unknown reply
    std::uint32_t id_ = 0;
    bool closed_ = false;
    std::string close_reason_;
    RpcCounters counters_;
};

} // namespace moat::bms
