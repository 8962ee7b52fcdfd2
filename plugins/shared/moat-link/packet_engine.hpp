// The host's cell-ring packet engine: eight sequence slots, pacing at the
// ring's baud rate, retries, and the receive side that matches returning
// packets to their slots.
//
// One request at a time holds the write lock while it waits for its send
// time and a free slot and hands the payload to `send` (the controller's
// ser.send). Replies arrive through on_packet() in ring order. A packet for
// an empty slot is a stray (logged, ignored); a packet that overtakes
// earlier ones fails only the occupied slots sent before it (message lost).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <vector>

#include <moat/log.hpp>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "cell_packet.hpp"

namespace moat::bms::cell {

/// One exchange: `count` modules from hop `start`, or a broadcast.
struct CellRequest {
    Command command = Command::read_voltage_and_status;
    std::uint8_t start = 0;
    int count = 1;              ///< addressed modules (1..32); ignored for a broadcast
    bool broadcast = false;     ///< one record for every module (cells = 31)
    std::vector<Bytes> records; ///< request records: `count` of them, or one for a broadcast
};

struct PacketEngineOptions {
    unsigned baud = 2400;
    int ring_cells = 0;       ///< modules the controller has (attempt bound, pacing); 0 = unknown
    int attempts = 10;
    Duration slot_wait = std::chrono::seconds(5);  ///< for a busy slot, and for a reply
};

struct EngineCounters {
    std::uint64_t sent = 0, received = 0, strays = 0, lost = 0, retries = 0, errors = 0, bad_packets = 0;
};

class PacketEngine {
public:
    /// Hand one payload to the controller (ser.send); throws on a link failure.
    using Send = std::function<Task<void>(Bytes payload)>;

    PacketEngine(Clock& clock, Send send, PacketEngineOptions opt, Logger log);
    ~PacketEngine();
    PacketEngine(const PacketEngine&) = delete;
    PacketEngine& operator=(const PacketEngine&) = delete;

    /// Run `req` with retries (timeout and message lost are retried; after
    /// the last attempt the first error is raised). The reply's record count
    /// is checked: fewer than addressed = short_reply.
    Task<Reply> request(CellRequest req);

    /// A payload from the ring (ser.in_pkt), in arrival order.
    void on_packet(std::span<const std::uint8_t> payload);

    /// Fail every occupied slot (the link went down).
    void fail_all(CellErrorKind kind, const std::string& why);

    void set_ring_cells(int n) { opt_.ring_cells = n; }
    const EngineCounters& counters() const { return counters_; }
    /// Minimum time between two sends for `req` (10 bit times per byte).
    Duration pacing(const CellRequest& req) const;
    std::size_t occupied() const;

private:
    struct Slot;
    static void finish(const std::shared_ptr<Slot>& slot, CellError err);
    Task<Reply> attempt(const CellRequest& req, const Bytes& records_payload);
    Task<void> lock();
    void unlock();

    Clock& clock_;
    Send send_;
    PacketEngineOptions opt_;
    Logger log_;
    std::uint8_t seq_ = 0;
    std::uint64_t send_order_ = 0;
    std::array<std::shared_ptr<Slot>, 8> waiting_;
    TimePoint next_send_{};
    bool locked_ = false;
    std::list<Event*> lock_queue_;
    EngineCounters counters_;
};

} // namespace moat::bms::cell
