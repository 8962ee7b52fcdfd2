#include "sim_device.hpp"

namespace moat::bms::sim {

SimDevice::SimDevice(Loop& loop, std::unique_ptr<ByteStream> stream, ControllerOptions copt, LinkOptions lopt, Logger log)
    : loop_(loop),
      stream_(std::move(stream)),
      lopt_(std::move(lopt)),
      log_(log),
      in_(lopt_.guarded),
      controller_(loop.clock(), std::move(copt), [this](msgpack::Value v) { send(v); }, log.child("ctl"))
{
}

void SimDevice::send(const msgpack::Value& v)
{
    if (faults.mute) return;
    ++sent_;
    msgpack::Bytes out;
    if (lopt_.guarded && lopt_.noise_every > 0 && sent_ % std::uint64_t(lopt_.noise_every) == 0 && !lopt_.noise_lines.empty()) {
        const auto& line = lopt_.noise_lines[(sent_ / std::uint64_t(lopt_.noise_every)) % lopt_.noise_lines.size()];
        out.insert(out.end(), line.begin(), line.end());
    }
    if (faults.invalid_msgpack > 0 && lopt_.guarded) {
        --faults.invalid_msgpack;
        // A guard and a map with an integer key: one decode error, then the real message.
        out.insert(out.end(), {guard_byte, 0x81, 0x01, 0x02});
    }
    auto framed = FrameStream::frame(v, lopt_.guarded, {.float32 = lopt_.float32});
    out.insert(out.end(), framed.begin(), framed.end());
    try {
        stream_->write(out);
    } catch (const IoError& e) {
        log_.debug("{}", e.what());
    }
}

Task<void> SimDevice::run()
{
    controller_.start();
    std::vector<std::uint8_t> buf(4096);
    for (;;) {
        const std::size_t n = co_await stream_->read(buf);
        if (n == 0) co_return;
        for (auto& ev : in_.feed(std::span(buf).first(n))) {
            if (auto* m = std::get_if<StreamMessage>(&ev)) controller_.receive(m->value);
            else if (std::holds_alternative<StreamError>(ev)) ++decode_errors_;
        }
    }
}

} // namespace moat::bms::sim
