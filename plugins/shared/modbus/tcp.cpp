#include "tcp.hpp"

#include <fmt/format.h>

namespace moat::meters::modbus {

namespace {
std::uint16_t get16(std::span<const std::uint8_t> b, std::size_t at) noexcept
{
    return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}
} // namespace

std::vector<std::uint8_t> tcp_frame(std::uint16_t transaction, std::uint8_t unit, std::span<const std::uint8_t> pdu)
{
    if (pdu.empty() || pdu.size() > max_pdu_size)
        throw std::invalid_argument(fmt::format("TCP frame: a PDU has 1..{} bytes, not {}", max_pdu_size, pdu.size()));
    const auto length = static_cast<std::uint16_t>(pdu.size() + 1);
    // Built byte by byte: g++ 12 warns falsely (-Warray-bounds) when a
    // vector made from an initialiser list is grown by insert().
    std::vector<std::uint8_t> out;
    out.reserve(mbap_size + pdu.size());
    for (auto word : {transaction, std::uint16_t{0} /* protocol: Modbus */, length}) {
        out.push_back(static_cast<std::uint8_t>(word >> 8));
        out.push_back(static_cast<std::uint8_t>(word & 0xFF));
    }
    out.push_back(unit);
    out.insert(out.end(), pdu.begin(), pdu.end());
    return out;
}

Result<std::size_t> tcp_frame_size(std::span<const std::uint8_t> received)
{
    if (received.size() < 6)
        return Error{Fault::truncated, fmt::format("MBAP header of {} bytes, at least 6 expected", received.size())};
    if (const auto protocol = get16(received, 2); protocol != 0)
        return Error{Fault::bad_protocol, fmt::format("MBAP protocol identifier {}, 0 expected", protocol)};
    const auto length = get16(received, 4);
    if (length < 2 || length > max_pdu_size + 1)
        return Error{Fault::bad_length, fmt::format("MBAP length {}, 2..{} expected", length, max_pdu_size + 1)};
    return std::size_t{6} + length;
}

Result<TcpFrame> tcp_parse(std::span<const std::uint8_t> frame)
{
    auto size = tcp_frame_size(frame);
    if (!size) return size.error();
    if (frame.size() < *size)
        return Error{Fault::truncated, fmt::format("TCP frame of {} bytes, {} expected", frame.size(), *size)};
    if (frame.size() > *size)
        return Error{Fault::too_long, fmt::format("TCP frame of {} bytes, {} expected", frame.size(), *size)};
    return TcpFrame{get16(frame, 0), frame[6], frame.subspan(mbap_size)};
}

Result<Response> tcp_decode_response(std::uint16_t transaction, std::uint8_t unit, const Request& request,
                                     std::span<const std::uint8_t> frame)
{
    auto parsed = tcp_parse(frame);
    if (!parsed) return parsed.error();
    if (parsed->transaction != transaction)
        return Error{Fault::unexpected_transaction,
                     fmt::format("reply to transaction {} while waiting for {}", parsed->transaction, transaction)};
    if (parsed->unit != unit)
        return Error{Fault::unexpected_unit, fmt::format("TCP reply from unit {} to a request to unit {}", parsed->unit, unit)};
    return decode_response(request, parsed->pdu);
}

Result<TcpRequest> tcp_decode_request(std::span<const std::uint8_t> frame)
{
    auto parsed = tcp_parse(frame);
    if (!parsed) return parsed.error();
    auto request = decode_request(parsed->pdu);
    if (!request) return request.error();
    return TcpRequest{parsed->transaction, parsed->unit, std::move(request).value()};
}

} // namespace moat::meters::modbus
