// Typed calls to the controller and the sinks for what it sends on its own.
//
// Wraps one session's RpcEngine. Every call has a timeout (a timeout is a
// link fault); replies of the wrong shape fail only their call (BadReply).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>

#include <moat/log.hpp>
#include <moat/task.hpp>

#include "msgpack.hpp"
#include "rpc.hpp"

namespace moat::bms {

struct ClientOptions {
    std::string app = "batt";          ///< the BMS app's name (first path element)
    std::string serial_app = "ser";
    Duration rpc_timeout = std::chrono::seconds(2);
    Duration cfg_timeout = std::chrono::seconds(3);
    std::size_t pkt_queue = 99;
};

/// Energy sums: Σ(u·i) over n ticks (info's `w: {s, n}` and the `work` push `{w, n}`).
struct WorkSums {
    double sum = 0;
    std::int64_t ticks = 0;
    static WorkSums from_info(const msgpack::Value& w);   ///< {s, n}
    static WorkSums from_push(const msgpack::Value& d);   ///< {w, n}
};

struct RelayState {
    bool on = false;
    std::optional<bool> forced;  ///< nullopt: automatic
    bool live = false;           ///< (info only)
};

struct PackInfo {
    double u = 0, i = 0;
    WorkSums work;
    RelayState relay;
    std::int64_t gen = 0;
};

struct ErrCount {
    std::int64_t crc = 0, frame = 0;
};

struct ClientCounters {
    std::uint64_t pkts = 0, pkts_dropped = 0, work_pushes = 0, cfg_deltas = 0, raw_chunks = 0;
};

class DeviceClient {
public:
    DeviceClient(RpcEngine& rpc, ClientOptions opt, Logger log);

    // ---- calls ----
    /// sys.cfg: mode 0 running, 2 stored, 3 fallback (cfg nil).
    Task<msgpack::Value> fetch_config(int mode = 0);
    /// sys.cfg with a delta (a `port` key replaces, "-" deletes); mode 0 RAM, 1 also persisted.
    Task<void> update_config(msgpack::Value delta, int mode);
    /// sys.cfg mode 1 without a delta: write the running configuration to the device's flash.
    Task<void> persist_config();
    /// The link self-test: sys.test must return 61 0D 62 0A 63.
    Task<void> self_test();
    void is_up();
    Task<std::string> ping(msgpack::Value m);
    Task<msgpack::Value> state();
    /// sys.boot (soft) or sys.reset (hard); the link goes down afterwards.
    Task<void> reboot(bool hard);
    /// batt.info: long poll on `gen` (-1: at once); `reset` zeroes the device's sums.
    Task<PackInfo> info(std::int64_t gen, bool reset, Duration timeout);
    Task<RelayState> relay();
    /// Force the relay on/off, or back to automatic (nullopt).
    Task<void> force_relay(std::optional<bool> on);
    Task<void> live();
    Task<void> send_packet(std::vector<std::uint8_t> payload);
    /// ser.errcount; nullopt when the device answers with the 2022 proxy or an error.
    Task<std::optional<ErrCount>> errcount();

    // ---- sinks ----
    /// Give the engine's notifications to this client (install as the handler).
    msgpack::Value on_message(const msgpack::Value& path, const msgpack::Value& data, bool is_request);
    std::function<void(bool)> on_link;               ///< `link` true/false
    std::function<void(const WorkSums&)> on_work;    ///< an energy push
    std::function<void()> on_packet;                 ///< a packet was queued
    std::function<void(const msgpack::Value&)> on_config;  ///< an mplex.cfg delta, after it was merged into `config`
    /// The device's config copy the client keeps (fetch_config(0) fills it; deltas merge in).
    msgpack::Value config;
    /// The queued ser.in_pkt payloads (oldest first).
    std::deque<std::vector<std::uint8_t>>& packets() { return packets_; }
    const ClientCounters& counters() const { return counters_; }

private:
    msgpack::Value app_path(const char* cmd) const;
    msgpack::Value ser_path(const char* cmd) const;

    RpcEngine& rpc_;
    ClientOptions opt_;
    Logger log_;
    std::deque<std::vector<std::uint8_t>> packets_;
    ClientCounters counters_;
};

} // namespace moat::bms
