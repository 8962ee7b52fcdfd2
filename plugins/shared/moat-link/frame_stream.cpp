#include "frame_stream.hpp"

namespace moat::bms {

using msgpack::DecodeStatus;

void FrameStream::console_byte(std::uint8_t b, std::vector<StreamEvent>& out)
{
    if (b == '\r') return;
    if (b == '\n') {
        if (state_ == State::skip_line) state_ = State::console;
        else out.push_back(ConsoleLine{std::move(line_), false});
        line_.clear();
        return;
    }
    if (state_ == State::skip_line) return;
    line_.push_back(char(b));
    if (line_.size() >= console_line_max) {
        out.push_back(ConsoleLine{std::move(line_), true});
        line_.clear();
        state_ = State::skip_line;
    }
}

std::vector<StreamEvent> FrameStream::feed(std::span<const std::uint8_t> bytes)
{
    std::vector<StreamEvent> out;
    if (!guarded_) {
        msg_.insert(msg_.end(), bytes.begin(), bytes.end());
        std::size_t at = 0;
        while (at < msg_.size() && msg_.size() >= needed_) {
            auto r = msgpack::decode(std::span(msg_).subspan(at), limits_);
            if (r.status == DecodeStatus::need_more) {
                needed_ = r.used;
                break;
            }
            needed_ = 0;
            if (r.status == DecodeStatus::error) {
                // No resync point in a plain stream: drop what we have.
                out.push_back(StreamError{std::move(r.error)});
                at = msg_.size();
                break;
            }
            out.push_back(StreamMessage{std::move(r.value)});
            at += r.used;
        }
        msg_.erase(msg_.begin(), msg_.begin() + std::ptrdiff_t(at));
        return out;
    }

    // `in` is the caller's chunk, or after a decode error the bytes of the bad
    // message after its 0xC1, scanned again for the next 0xC1.
    msgpack::Bytes rescan;
    std::span<const std::uint8_t> in = bytes;
    std::size_t i = 0;
    while (i < in.size()) {
        if (state_ != State::message) {
            const std::uint8_t b = in[i++];
            if (b == guard_byte) {
                state_ = State::message;
                msg_.clear();
                needed_ = 0;
            } else if (state_ != State::resync) {
                console_byte(b, out);
            }
            continue;
        }
        const std::size_t fresh = in.size() - i;
        msg_.insert(msg_.end(), in.begin() + std::ptrdiff_t(i), in.end());
        i = in.size();
        if (msg_.size() < needed_) break;
        auto r = msgpack::decode(msg_, limits_);
        if (r.status == DecodeStatus::need_more) {
            needed_ = r.used;
            break;
        }
        needed_ = 0;
        if (r.status == DecodeStatus::ok) {
            out.push_back(StreamMessage{std::move(r.value)});
            // A complete object always ends inside the fresh bytes (what was
            // held before was an incomplete prefix); the rest is console again.
            const std::size_t rest = msg_.size() - r.used;
            i = in.size() - std::min(rest, fresh);
            msg_.clear();
            state_ = State::console;
            continue;
        }
        out.push_back(StreamError{std::move(r.error)});
        msgpack::Bytes again(msg_.begin() + 1, msg_.end());
        msg_.clear();
        state_ = State::resync;
        rescan = std::move(again);
        in = rescan;
        i = 0;
    }
    return out;
}

std::vector<StreamEvent> FrameStream::finish()
{
    std::vector<StreamEvent> out;
    if (!line_.empty() && state_ != State::skip_line) out.push_back(ConsoleLine{std::move(line_), false});
    line_.clear();
    msg_.clear();
    needed_ = 0;
    state_ = State::console;
    return out;
}

msgpack::Bytes FrameStream::frame(const msgpack::Value& v, bool guarded, msgpack::EncodeOptions opt)
{
    msgpack::Bytes out;
    if (guarded) out.push_back(guard_byte);
    msgpack::encode(v, out, opt);
    return out;
}

} // namespace moat::bms
