// Fuzz target: the SerialPacker receiver with arbitrary bytes and gaps; every
// frame it delivers has a valid CRC and its payload frames back to itself.
#include <cstdlib>

#include "serial_packer.hpp"

using namespace moat::bms::serial_packer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size < 1) return 0;
    PackerOptions opt;
    opt.max_len = (data[0] & 1) ? 2000 : 255;
    opt.start = (data[0] & 2) ? 0xFF : 0x85;
    opt.tolerate_pad = data[0] & 4;
    Receiver rx(opt);
    Receiver::Time t{};
    std::vector<ReceiveEvent> out;
    for (std::size_t i = 1; i < size; ++i) {
        // Bytes with the top bits 111 1111x... are just data; use every 7th byte as a time step.
        if (i % 7 == 0) t += std::chrono::milliseconds(data[i] * 4);
        rx.feed(data[i], t, out);
    }
    for (auto& e : out)
        if (auto* f = std::get_if<Frame>(&e)) {
            if (f->payload.empty() || f->payload.size() > opt.max_len) std::abort();
            auto framed = frame(f->payload, opt);
            Receiver again(opt);
            auto evs = again.feed(framed, t);
            if (evs.size() != 1 || std::get<Frame>(evs[0]).payload != f->payload) std::abort();
        }
    if (crc(std::span(data, size)) != crc_bitwise(std::span(data, size))) std::abort();
    return 0;
}
