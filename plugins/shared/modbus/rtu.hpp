// Modbus RTU framing (serial line): unit address, PDU, CRC-16/Modbus.
//
// RTU has no length field: a reply ends when the bytes stop (3.5 character
// times of silence). Waiting for silence after every reply is slow and
// unreliable through USB adapters, so the client instead asks
// rtu_response_size() how long the reply to its request is, given the bytes
// in so far, and decodes once that many have arrived (or its timeout gives
// up, in which case decoding what it has reports a truncated frame).
#pragma once

#include "modbus.hpp"

namespace moat::meters::modbus {

/// CRC-16/Modbus (reflected polynomial 0xA001, initial value 0xFFFF).
std::uint16_t crc16(std::span<const std::uint8_t> bytes) noexcept;

/// Unit 0 is the broadcast address: every slave acts, none replies.
inline constexpr std::uint8_t broadcast_unit = 0;
/// The longest RTU frame: unit, 253 bytes of PDU, CRC.
inline constexpr std::size_t max_rtu_frame_size = 256;
/// The shortest reply a request can get: an exception (unit, 2 PDU bytes, CRC).
inline constexpr std::size_t min_rtu_reply_size = 5;

/// Unit, PDU, then the CRC low byte first.
std::vector<std::uint8_t> rtu_frame(std::uint8_t unit, std::span<const std::uint8_t> pdu);
/// The frame for a request.
inline std::vector<std::uint8_t> rtu_request(std::uint8_t unit, const Request& request)
{
    return rtu_frame(unit, encode_request(request));
}

/// True when `frame` (unit, PDU, CRC) is at least 4 bytes long and its last
/// two bytes are the CRC of the rest.
bool rtu_crc_ok(std::span<const std::uint8_t> frame) noexcept;

/// The size of the complete reply to `request`, judged from the bytes
/// `received` so far. Until the function byte is in, this is the lower bound
/// min_rtu_reply_size; from then on it is exact: 5 for an exception reply,
/// otherwise the normal reply's size taken from the request (never from the
/// reply's own byte count, so a corrupted count cannot make the client wait
/// for 255 bytes). Call again whenever it has been reached.
std::size_t rtu_response_size(const Request& request, std::span<const std::uint8_t> received);

/// Decode the reply of `unit` to `request`; `frame` must be exactly the
/// reply (rtu_response_size() bytes). Checks, in this order: length,
/// CRC, unit, then the PDU (decode_response()).
Result<Response> rtu_decode_response(std::uint8_t unit, const Request& request, std::span<const std::uint8_t> frame);

// ---- server side (simulators, tests) ----

/// The size of the complete request frame that starts at `received[0]`:
/// Fault::truncated while too few bytes are in to tell (FC16 carries its
/// length in byte 6), Fault::unsupported_function for a function code
/// whose frame length is unknown here, Fault::bad_length for an FC16 byte
/// count beyond 123 registers.
Result<std::size_t> rtu_request_size(std::span<const std::uint8_t> received);

/// A request received on the line, with the unit it is addressed to.
struct RtuRequest {
    std::uint8_t unit;
    Request request;
};
/// Decode exactly one request frame: length, CRC, then decode_request().
Result<RtuRequest> rtu_decode_request(std::span<const std::uint8_t> frame);

} // namespace moat::meters::modbus
