#include "rtu.hpp"

#include <fmt/format.h>

namespace moat::meters::modbus {

std::uint16_t crc16(std::span<const std::uint8_t> bytes) noexcept
{
    std::uint16_t crc = 0xFFFF;
    for (auto b : bytes) {
        crc ^= b;
        for (int i = 0; i < 8; ++i) crc = (crc & 1) ? static_cast<std::uint16_t>((crc >> 1) ^ 0xA001) : crc >> 1;
    }
    return crc;
}

std::vector<std::uint8_t> rtu_frame(std::uint8_t unit, std::span<const std::uint8_t> pdu)
{
    if (pdu.empty() || pdu.size() > max_pdu_size)
        throw std::invalid_argument(fmt::format("RTU frame: a PDU has 1..{} bytes, not {}", max_pdu_size, pdu.size()));
    std::vector<std::uint8_t> out;
    out.reserve(pdu.size() + 3);
    out.push_back(unit);
    out.insert(out.end(), pdu.begin(), pdu.end());
    const auto crc = crc16(out);
    out.push_back(static_cast<std::uint8_t>(crc & 0xFF));
    out.push_back(static_cast<std::uint8_t>(crc >> 8));
    return out;
}

namespace {

std::uint16_t frame_crc(std::span<const std::uint8_t> frame) noexcept
{
    return static_cast<std::uint16_t>(frame[frame.size() - 2] | frame[frame.size() - 1] << 8);
}

// Length and CRC of a whole frame; the PDU between unit and CRC when both are right.
Result<std::span<const std::uint8_t>> checked_pdu(std::string_view what, std::span<const std::uint8_t> frame,
                                                 std::size_t need)
{
    if (frame.size() < need)
        return Error{Fault::truncated, fmt::format("RTU {} of {} bytes, {} expected", what, frame.size(), need)};
    if (frame.size() > need)
        return Error{Fault::too_long, fmt::format("RTU {} of {} bytes, {} expected", what, frame.size(), need)};
    const auto body = frame.first(frame.size() - 2);
    if (const auto want = crc16(body); want != frame_crc(frame))
        return Error{Fault::bad_crc, fmt::format("RTU {}: CRC 0x{:04X} received, 0x{:04X} computed", what,
                                                 frame_crc(frame), want)};
    return body.subspan(1);
}

} // namespace

bool rtu_crc_ok(std::span<const std::uint8_t> frame) noexcept
{
    return frame.size() >= 4 && crc16(frame.first(frame.size() - 2)) == frame_crc(frame);
}

std::size_t rtu_response_size(const Request& request, std::span<const std::uint8_t> received)
{
    if (received.size() < 2) return min_rtu_reply_size;
    if (received[1] == (static_cast<std::uint8_t>(request.function) | 0x80)) return min_rtu_reply_size;
    return 3 + response_pdu_size(request);
}

Result<Response> rtu_decode_response(std::uint8_t unit, const Request& request, std::span<const std::uint8_t> frame)
{
    auto pdu = checked_pdu("reply", frame, rtu_response_size(request, frame));
    if (!pdu) return pdu.error();
    if (frame[0] != unit)
        return Error{Fault::unexpected_unit, fmt::format("RTU reply from unit {} to a request to unit {}", frame[0], unit)};
    return decode_response(request, *pdu);
}

Result<std::size_t> rtu_request_size(std::span<const std::uint8_t> received)
{
    if (received.size() < 2)
        return Error{Fault::truncated, fmt::format("RTU request of {} bytes, the function code is missing", received.size())};
    switch (static_cast<Function>(received[1])) {
    case Function::read_holding_registers:
    case Function::read_input_registers:
    case Function::write_single_register:
    case Function::diagnostics:
        return std::size_t{8};
    case Function::write_multiple_registers:
        if (received.size() < 7)
            return Error{Fault::truncated, fmt::format("RTU FC16 request of {} bytes, the byte count is missing",
                                                       received.size())};
        // At most 123 registers: a larger byte count would make a frame
        // longer than RTU allows (found by fuzzing: 9 + 255 bytes).
        if (received[6] > 2 * max_write_registers)
            return Error{Fault::bad_length, fmt::format("RTU FC16 request with a byte count of {} (at most {})",
                                                        received[6], 2 * max_write_registers)};
        return std::size_t{9} + received[6];
    }
    return Error{Fault::unsupported_function, function_name(received[1])};
}

Result<RtuRequest> rtu_decode_request(std::span<const std::uint8_t> frame)
{
    auto size = rtu_request_size(frame);
    if (!size) return size.error();
    auto pdu = checked_pdu("request", frame, *size);
    if (!pdu) return pdu.error();
    auto request = decode_request(*pdu);
    if (!request) return request.error();
    return RtuRequest{frame[0], std::move(request).value()};
}

} // namespace moat::meters::modbus
