// Modbus TCP framing: the 7-byte MBAP header (transaction id, protocol id 0,
// length of what follows, unit id) in front of the PDU.
//
// TCP is a byte stream: the client appends what it receives to a buffer,
// asks tcp_frame_size() how long the frame at its front is (Fault::truncated
// means: read more), and hands exactly that many bytes to
// tcp_decode_response(). A reply with another transaction id is a late
// answer to an earlier request (Fault::unexpected_transaction): drop it and
// keep reading.
#pragma once

#include "modbus.hpp"

namespace moat::meters::modbus {

inline constexpr std::size_t mbap_size = 7;
/// The longest ADU: MBAP header and a 253-byte PDU.
inline constexpr std::size_t max_tcp_frame_size = mbap_size + max_pdu_size;

/// MBAP header and PDU.
std::vector<std::uint8_t> tcp_frame(std::uint16_t transaction, std::uint8_t unit, std::span<const std::uint8_t> pdu);
inline std::vector<std::uint8_t> tcp_request(std::uint16_t transaction, std::uint8_t unit, const Request& request)
{
    return tcp_frame(transaction, unit, encode_request(request));
}

/// The size of the frame starting at `received[0]`, from its header.
/// Errors: truncated (fewer than 6 bytes in), bad_protocol (protocol id not
/// 0), bad_length (a length field of 0, 1 or more than 254: the unit id plus
/// a PDU of 1..253 bytes). The caller then drops the connection: a stream
/// whose framing is lost cannot be resynchronised.
Result<std::size_t> tcp_frame_size(std::span<const std::uint8_t> received);

/// One frame, taken apart. `pdu` points into the bytes it was parsed from.
struct TcpFrame {
    std::uint16_t transaction;
    std::uint8_t unit;
    std::span<const std::uint8_t> pdu;
};
/// Parse exactly one frame (tcp_frame_size() bytes, else truncated/too_long).
Result<TcpFrame> tcp_parse(std::span<const std::uint8_t> frame);

/// Decode the reply to `request` sent with `transaction` to `unit`. Checks
/// the header (tcp_parse()), transaction, unit, then the PDU.
Result<Response> tcp_decode_response(std::uint16_t transaction, std::uint8_t unit, const Request& request,
                                     std::span<const std::uint8_t> frame);

/// A request received on a TCP connection (server side).
struct TcpRequest {
    std::uint16_t transaction;
    std::uint8_t unit;
    Request request;
};
Result<TcpRequest> tcp_decode_request(std::span<const std::uint8_t> frame);

} // namespace moat::meters::modbus
