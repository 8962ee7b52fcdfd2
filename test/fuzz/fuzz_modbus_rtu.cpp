// Fuzz target: Modbus RTU frames. A request from the first bytes, then a
// reply stream that arrives one byte at a time as the meters plugin reads it
// (rtu_response_size() after every byte, decode at the size it names); the
// same bytes also go through the server side (request sizes, decoding, with
// a resync by one byte after a bad frame). With the mode bit set the stream
// is a PDU given a valid CRC, so the checks behind the CRC are reached.
#include <cstdlib>

#include "common_modbus.hpp"
#include "rtu.hpp"

using namespace moat::meters::modbus;
using moat::fuzz::FuzzInput;

namespace {

void client_side(std::uint8_t unit, const Request& request, std::span<const std::uint8_t> stream)
{
    std::vector<std::uint8_t> rx;
    std::size_t need = rtu_response_size(request, {});
    for (std::uint8_t b : stream) {
        rx.push_back(b);
        need = rtu_response_size(request, rx);
        if (need < min_rtu_reply_size || need > max_rtu_frame_size) std::abort();
        if (rx.size() < need) continue;
        if (rx.size() != need) std::abort();  // checked after every byte: never past it
        if (rtu_response_size(request, rx) != need) std::abort();
        auto r = rtu_decode_response(unit, request, rx);
        if (r.ok()) {
            if (!rtu_crc_ok(rx) || rx[0] != unit) std::abort();
            // What decodes re-encodes to the same frame.
            std::vector<std::uint8_t> again =
                r->is_exception() ? rtu_frame(unit, encode_exception(std::uint8_t(rx[1] & 0x7F), *r->exception))
                                  : rtu_frame(unit, encode_response(request, r->registers));
            if (again != rx) std::abort();
            if (!r->is_exception() && request.is_read() && r->registers.size() != request.count) std::abort();
        } else {
            (void)r.error().message();
        }
        rx.clear();
    }
    // A reply cut short: what a timeout decodes.
    if (!rx.empty() && rtu_decode_response(unit, request, rx).ok()) std::abort();
}

void server_side(std::span<const std::uint8_t> stream)
{
    while (!stream.empty()) {
        auto size = rtu_request_size(stream);
        if (!size) {
            if (size.error().fault == Fault::truncated) return;
            stream = stream.subspan(1);
            continue;
        }
        if (*size < 4 || *size > max_rtu_frame_size) std::abort();
        if (*size > stream.size()) return;
        auto frame = stream.first(*size);
        auto r = rtu_decode_request(frame);
        if (r.ok()) {
            auto again = rtu_request(r->unit, r->request);
            if (!std::equal(again.begin(), again.end(), frame.begin(), frame.end())) std::abort();
            (void)r->request.describe();
            stream = stream.subspan(*size);
        } else {
            stream = stream.subspan(1);
        }
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzInput in(data, size);
    const std::uint8_t mode = in.byte();
    const std::uint8_t unit = in.byte();
    const Request request = moat::fuzz::request_from(in);
    std::vector<std::uint8_t> stream;
    if (mode & 1) {
        auto pdu = in.rest();
        if (pdu.empty()) return 0;  // rtu_frame() takes 1..253 bytes
        stream = rtu_frame(unit, pdu.first(std::min<std::size_t>(pdu.size(), max_pdu_size)));
    } else {
        stream.assign(in.rest().begin(), in.rest().end());
    }
    client_side(unit, request, stream);
    server_side(stream);
    return 0;
}
