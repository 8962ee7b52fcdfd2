// SerialPacker: the frame format of the cell ring (and of a future native
// controller). A frame is START, LEN (1 or 2 bytes), PAYLOAD, CRC (big-endian).
//
// The CRC is a 16-bit nibble-wise CRC with the constant 0xBAAD, initial value
// 0, no final XOR, over the payload only. Lengths above 127 take two bytes
// when the configured maximum is above 255 (both ends must agree). A module
// that must abandon a frame it forwards pads it with zeros and sends the CRC
// XOR 1: module receivers ignore such a frame silently, the controller counts
// it as a CRC error (PackerOptions::tolerate_pad).
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

namespace moat::bms::serial_packer {

using Bytes = std::vector<std::uint8_t>;

/// The CRC by table (what the firmware does).
std::uint16_t crc(std::span<const std::uint8_t> data, std::uint16_t init = 0);
/// The same CRC by the bit loop (kept to prove the table).
std::uint16_t crc_bitwise(std::span<const std::uint8_t> data, std::uint16_t init = 0);

struct PackerOptions {
    std::uint8_t start = 0xFF;        ///< the cell ring's start byte (library default 0x85)
    std::size_t max_len = 2000;       ///< > 255: lengths above 127 take two bytes
    std::chrono::milliseconds max_idle{500};  ///< a gap longer than this aborts a partial frame
    bool tolerate_pad = false;        ///< a CRC off by exactly 1 is an abandoned frame, not an error
};

/// LEN's encoding for `len` under `opt` (1 or 2 bytes).
Bytes encode_length(std::size_t len, const PackerOptions& opt);

/// The whole frame for `payload`. Throws std::length_error for an empty or too long payload.
Bytes frame(std::span<const std::uint8_t> payload, const PackerOptions& opt = {});

/// A received, CRC-checked payload.
struct Frame {
    Bytes payload;
};
/// A byte outside any frame (console text on the ring).
struct Stray {
    std::uint8_t byte;
};
/// A frame that was dropped: CRC mismatch, zero or too long length, or an idle abort.
struct FrameError {
    enum Kind { crc, length, idle } kind;
};
using ReceiveEvent = std::variant<Frame, Stray, FrameError>;

/// The receiving state machine. Times are passed in, so tests need no clock.
class Receiver {
public:
    using Time = std::chrono::steady_clock::time_point;
    explicit Receiver(PackerOptions opt = {}) : opt_(opt) {}

    /// Feed one byte received at `now`; appends what it completed to `out`.
    void feed(std::uint8_t b, Time now, std::vector<ReceiveEvent>& out);
    std::vector<ReceiveEvent> feed(std::span<const std::uint8_t> bytes, Time now);

    std::uint32_t crc_errors() const { return crc_errors_; }
    std::uint32_t frame_errors() const { return frame_errors_; }
    /// Read and zero both counters (the controller's `errcount`).
    void reset_counters() { crc_errors_ = frame_errors_ = 0; }

private:
    enum class State { idle, len1, len2, payload, crc1, crc2 };
    PackerOptions opt_;
    State state_ = State::idle;
    Bytes payload_;
    std::size_t len_ = 0;
    std::uint16_t crc_rx_ = 0;
    int utf8_skip_ = 0;
    Time last_{};
    bool have_last_ = false;
    std::uint32_t crc_errors_ = 0;
    std::uint32_t frame_errors_ = 0;
};

} // namespace moat::bms::serial_packer
