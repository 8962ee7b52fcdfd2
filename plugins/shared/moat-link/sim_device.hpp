// The simulated controller on a byte stream: the guarded (or plain) msgpack
// link of the real device, with console noise between messages and the link
// faults a test can switch at run time.
#pragma once

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "frame_stream.hpp"
#include "sim_controller.hpp"
#include "transport.hpp"

namespace moat::bms::sim {

struct LinkOptions {
    bool guarded = true;
    bool float32 = true;            ///< floats as the RP2040 sends them
    /// Lines written before every `noise_every`-th message (0 = no noise).
    int noise_every = 0;
    std::vector<std::string> noise_lines{"RELAY 1 Check OK\r\n", "DLY 10000\r\n", "UL 41.2 \xE2\x9C\x93\r\n"};
};

struct LinkFaults {
    int invalid_msgpack = 0;        ///< the next n messages follow a guard with invalid msgpack
    bool mute = false;              ///< write nothing (the device is silent, the port open)
};

class SimDevice {
public:
    SimDevice(Loop& loop, std::unique_ptr<ByteStream> stream, ControllerOptions copt, LinkOptions lopt, Logger log);
    /// Read and serve until the host closes its end (or the stream fails).
    Task<void> run();

    SimController& controller() { return controller_; }
    LinkFaults faults;
    std::uint64_t decode_errors() const { return decode_errors_; }

private:
    void send(const msgpack::Value& v);

    Loop& loop_;
    std::unique_ptr<ByteStream> stream_;
    LinkOptions lopt_;
    Logger log_;
    FrameStream in_;
    SimController controller_;
    std::uint64_t sent_ = 0;
    std::uint64_t decode_errors_ = 0;
};

} // namespace moat::bms::sim
