#include "session_options.hpp"

#include <chrono>

namespace moat::bms {

using namespace std::chrono;

namespace {

const ConfigKey keys[] = {
    {"device", KeyType::string, "\"\"", "the controller's tty, e.g. /dev/serial/by-id/usb-MicroPython_...-if00 (or use socket)"},
    {"socket", KeyType::string, "\"\"", "a Unix socket speaking plain msgpack to the controller (or use device)"},
    {"guarded", KeyType::boolean, "true", "0xC1-guarded messages with console text between them; when not given: true for a device, false for a socket"},
    {"app", KeyType::string, "\"batt\"", "the controller's BMS app: first element of its RPC paths and its config subtree"},
    {"serial_app", KeyType::string, "\"ser\"", "the controller's cell-ring app"},
    {"rpc_timeout_s", KeyType::number, "2", "seconds a call may take (rly, live, send, cfg changes); a timeout ends the session", 0.1, 60},
    {"cfg_timeout_s", KeyType::number, "3", "seconds the configuration fetch at link-up may take", 0.1, 60},
    {"resync_errors", KeyType::integer, "5", "decode errors within resync_window_s that end the session (fewer: resync)", 1, 1000},
    {"resync_window_s", KeyType::number, "10", "window for resync_errors, seconds", 0.1, 3600},
    {"backoff_initial_s", KeyType::number, "1", "first reconnect delay, seconds", 0.01, 3600},
    {"backoff_factor", KeyType::number, "1.4", "reconnect delay growth per failed session", 1, 10},
    {"backoff_max_s", KeyType::number, "20", "longest reconnect delay, seconds", 0.01, 3600},
    {"backoff_reset_s", KeyType::number, "60", "a session up this long resets the reconnect delay, seconds", 0, 86400},
    {"pkt_queue", KeyType::integer, "99", "cell packets queued from the controller; the oldest is dropped beyond", 1, 10000},
    {"ring_attempts", KeyType::integer, "10", "attempts per cell-ring request (timeouts and lost packets are retried)", 1, 100},
};

Duration secs(const Config& c, const char* key) { return duration_cast<Duration>(duration<double>(c.get_number(key))); }

bool given(const Config& c, const char* key)
{
    return c.node(key).from_file();
}

} // namespace

std::span<const ConfigKey> config_keys() { return keys; }

void validate_config(const Config& c)
{
    const bool dev = !c.get_string("device").empty(), sock = !c.get_string("socket").empty();
    if (dev == sock) c.problem(dev ? "socket" : "device", "give exactly one of 'device' and 'socket'");
    if (dev) c.claim("device", "the serial device " + c.get_string("device"));
    c.throw_problems();
}

SessionOptions session_options(const Config& c)
{
    SessionOptions o;
    o.device = c.get_string("device");
    o.socket = c.get_string("socket");
    o.guarded = given(c, "guarded") ? c.get_bool("guarded") : !o.device.empty();
    o.client.app = c.get_string("app");
    o.client.serial_app = c.get_string("serial_app");
    o.client.rpc_timeout = secs(c, "rpc_timeout_s");
    o.client.cfg_timeout = secs(c, "cfg_timeout_s");
    o.client.pkt_queue = std::size_t(c.get_int("pkt_queue"));
    o.resync_errors = int(c.get_int("resync_errors"));
    o.resync_window = secs(c, "resync_window_s");
    o.backoff_initial = secs(c, "backoff_initial_s");
    o.backoff_factor = c.get_number("backoff_factor");
    o.backoff_max = secs(c, "backoff_max_s");
    o.backoff_reset = secs(c, "backoff_reset_s");
    o.ring_attempts = int(c.get_int("ring_attempts"));
    return o;
}

} // namespace moat::bms
