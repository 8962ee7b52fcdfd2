// Fuzz target: Modbus TCP/MBAP reassembly. A request from the first bytes,
// then a stream cut into pieces of fuzzed sizes (as the socket delivers it),
// reassembled as the meters plugin does: tcp_frame_size() on what is in, a
// frame taken once complete, a late reply (other transaction) skipped, any
// other framing error ends the stream. The server side parses the same bytes.
#include <cstdlib>

#include "common_modbus.hpp"
#include "tcp.hpp"

using namespace moat::meters::modbus;
using moat::fuzz::FuzzInput;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzInput in(data, size);
    const auto tid = in.raw<std::uint16_t>();
    const std::uint8_t unit = in.byte();
    const std::uint8_t cuts = in.byte();  // piece sizes: 1 + (cuts >> k) % 8
    const Request request = moat::fuzz::request_from(in);
    const auto stream = in.rest();

    std::vector<std::uint8_t> rx;
    std::size_t pos = 0;
    bool lost = false;
    for (unsigned k = 0; pos < stream.size() && !lost; k = (k + 1) % 6) {
        const std::size_t piece = std::min<std::size_t>(1 + ((cuts >> k) & 7), stream.size() - pos);
        rx.insert(rx.end(), stream.begin() + std::ptrdiff_t(pos), stream.begin() + std::ptrdiff_t(pos + piece));
        pos += piece;
        if (rx.size() > 4 * max_tcp_frame_size) std::abort();  // a frame is taken as soon as it is complete
        for (;;) {
            auto fs = tcp_frame_size(rx);
            if (!fs) {
                if (fs.error().fault != Fault::truncated) lost = true;
                break;
            }
            if (*fs < mbap_size + 1 || *fs > max_tcp_frame_size) std::abort();
            if (rx.size() < *fs) break;
            const std::vector<std::uint8_t> frame(rx.begin(), rx.begin() + std::ptrdiff_t(*fs));
            rx.erase(rx.begin(), rx.begin() + std::ptrdiff_t(*fs));
            auto parsed = tcp_parse(frame);
            if (!parsed) std::abort();  // tcp_frame_size() said it is one whole frame
            auto r = tcp_decode_response(tid, unit, request, frame);
            if (r.ok()) {
                if (parsed->transaction != tid || parsed->unit != unit) std::abort();
                auto again = r->is_exception()
                                 ? tcp_frame(tid, unit, encode_exception(std::uint8_t(parsed->pdu[0] & 0x7F), *r->exception))
                                 : tcp_frame(tid, unit, encode_response(request, r->registers));
                if (again != frame) std::abort();
            } else {
                (void)r.error().message();
            }
            auto req = tcp_decode_request(frame);
            if (req.ok()) {
                auto again = tcp_request(req->transaction, req->unit, req->request);
                if (again != frame) std::abort();
            }
        }
    }
    return 0;
}
