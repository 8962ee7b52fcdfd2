// The simulated RP2040 controller: its RPC commands (sys, batt, ser), the
// pack ADC and energy sums, the relay state machine with keepalive, the info
// generation and long poll, and the cell ring behind ser.send. It exchanges
// msgpack values; SimLink puts them on a byte stream.
#pragma once

#include <functional>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include <moat/log.hpp>
#include <moat/loop.hpp>

#include "msgpack.hpp"
#include "sim_ring.hpp"

namespace moat::bms::sim {

/// The device configuration the simulator starts with (a 16-cell bms.cfg).
msgpack::Value default_device_config(int cells = 16);

struct ControllerOptions {
    int cells = 16;                 ///< batt.n in the default config
    int modules = 16;               ///< modules physically in the ring
    bool quirks_2022 = false;       ///< keepalive never trips; generation every check
    double time_factor = 1.0;       ///< > 1: simulated time runs faster
    std::uint32_t seed = 1;
    msgpack::Value device_config;   ///< nil: default_device_config(cells)
    Duration boot_outage = std::chrono::seconds(2);
    bool byte_ring = false;         ///< SerialPacker frames on the ring (real CRC errors)
};

/// Faults of the controller itself (the ring's are SimRing::faults).
struct ControllerFaults {
    bool silent = false;            ///< requests are read and never answered
    bool lose_next_work_push = false;
    bool omit_mplex_cfg = false;
    Duration mplex_cfg_delay{0};
};

struct RelayEvent {
    TimePoint at;
    bool on;
    std::string why;
};

class SimController {
public:
    /// A message for the host (a notification or a reply).
    using Emit = std::function<void(msgpack::Value)>;

    SimController(Clock& clock, ControllerOptions opt, Emit emit, Logger log);
    ~SimController();

    /// Start the runtime: sends `link true`, starts the check timer.
    void start();
    /// One message from the host.
    void receive(const msgpack::Value& msg);

    SimRing& ring() { return ring_; }
    ControllerFaults faults;
    double pack_current = 0;        ///< true current (A, + = charging); 0 while the relay is open
    double u_gain = 1.0;            ///< hidden: reported/true pack voltage (a calibration error)

    bool relay() const { return relay_; }
    int forced() const { return forced_; }  ///< -1 none, 0 off, 1 on
    bool live() const { return live_; }
    const std::vector<RelayEvent>& relay_history() const { return relay_history_; }
    const std::vector<std::string>& requests() const { return requests_; }  ///< every path received, in order
    int rly_calls() const { return rly_calls_; }
    int generation() const { return gen_; }
    const msgpack::Value& running_config() const { return running_; }
    const msgpack::Value& stored_config() const { return stored_; }
    /// Send `n` ser.in_pkt notifications at once (a flood).
    void flood_in_pkt(int n);
    /// The booting state ends the runtime for `outage` (soft keeps the relay).
    void reboot(bool hard);
    /// A configuration change made on the controller by someone else (an
    /// operator's tool): what sys.cfg mode 0 with `delta` does, mplex.cfg included.
    void change_config(const msgpack::Value& delta);

private:
    using Done = std::function<void(msgpack::Value result, std::string error)>;
    void handle(const std::string& path, const msgpack::Value& data, Done done);
    void handle_cfg(const msgpack::Value& data, Done& done);
    void handle_info(const msgpack::Value& data, Done done);
    void handle_rly(const msgpack::Value& data, Done& done);
    void apply_config();
    void check();
    void set_relay(bool on, const std::string& why);
    void next_generation();
    void wake_info();
    msgpack::Value info_value(bool reset);
    void notify(const char* a0, const char* a1, msgpack::Value d);
    void notify_str(const char* a, msgpack::Value d);
    Duration scaled(Duration real) const;
    void keepalive_timer();

    Clock& clock_;
    ControllerOptions opt_;
    Emit emit_;
    Logger log_;
    SimRing ring_;
    msgpack::Value running_, stored_, fallback_;
    bool up_ = false;
    bool relay_ = false;
    int forced_ = -1;
    bool live_ = false;
    bool switch_ok_ = false;
    TimePoint t_sw_{};
    double w_ = 0;
    std::int64_t n_ = 0;
    int gen_ = 1;
    int checks_ = 0;
    std::vector<RelayEvent> relay_history_;
    std::vector<std::string> requests_;
    int rly_calls_ = 0;
    struct InfoWait {
        std::int64_t gen;
        bool reset;
        Done done;
    };
    std::list<InfoWait> info_waits_;
    TimePoint ring_free_{};
    Timer check_timer_, keepalive_, boot_timer_;
    struct OneShot {
        bool fired = false;
        Timer timer;
    };
    std::list<OneShot> timers_;  ///< one-shot deliveries (ring replies, delayed notifications)
    void later(Duration d, std::function<void()> fn);
};

} // namespace moat::bms::sim
