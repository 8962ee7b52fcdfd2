#include "serial_packer.hpp"

#include <array>
#include <bit>
#include <stdexcept>

namespace moat::bms::serial_packer {

namespace {

constexpr std::uint16_t poly = 0xBAAD;

constexpr std::uint16_t nibble_step(std::uint16_t crc, unsigned x)
{
    crc ^= std::uint16_t(x & 0xF);
    for (int k = 0; k < 4; ++k) crc = (crc & 1) ? std::uint16_t((crc >> 1) ^ poly) : std::uint16_t(crc >> 1);
    return crc;
}

// T[i] = the bit loop applied to nibble i from zero: the table is derived,
// not copied, and the test checks it against the published one.
constexpr auto make_table()
{
    std::array<std::uint16_t, 16> t{};
    for (unsigned i = 0; i < 16; ++i) t[i] = nibble_step(0, i);
    return t;
}
constexpr auto table = make_table();
static_assert(table[8] == 0xBAAD && table[1] == 0x64A8 && table[15] == 0xF0AE);

} // namespace

std::uint16_t crc(std::span<const std::uint8_t> data, std::uint16_t c)
{
    for (std::uint8_t b : data) {
        c = std::uint16_t(table[(c ^ (b >> 4)) & 0xF] ^ (c >> 4));
        c = std::uint16_t(table[(c ^ b) & 0xF] ^ (c >> 4));
    }
    return c;
}

std::uint16_t crc_bitwise(std::span<const std::uint8_t> data, std::uint16_t c)
{
    for (std::uint8_t b : data) {
        c = nibble_step(c, b >> 4);
        c = nibble_step(c, b & 0xF);
    }
    return c;
}

Bytes encode_length(std::size_t len, const PackerOptions& opt)
{
    if (opt.max_len > 255 && len > 127) return {std::uint8_t((len & 0x7F) | 0x80), std::uint8_t(len >> 7)};
    return {std::uint8_t(len)};
}

Bytes frame(std::span<const std::uint8_t> payload, const PackerOptions& opt)
{
    if (payload.empty() || payload.size() > opt.max_len || (opt.max_len <= 255 && payload.size() > 255) ||
        payload.size() > 0x7FFF)
        throw std::length_error("SerialPacker: payload of " + std::to_string(payload.size()) + " bytes");
    Bytes out{opt.start};
    auto len = encode_length(payload.size(), opt);
    out.insert(out.end(), len.begin(), len.end());
    out.insert(out.end(), payload.begin(), payload.end());
    const auto c = crc(payload);
    out.push_back(std::uint8_t(c >> 8));
    out.push_back(std::uint8_t(c));
    return out;
}

void Receiver::feed(std::uint8_t b, Time now, std::vector<ReceiveEvent>& out)
{
    if (state_ != State::idle && have_last_ && now - last_ > opt_.max_idle) {
        ++frame_errors_;
        out.push_back(FrameError{FrameError::idle});
        state_ = State::idle;
    }
    last_ = now;
    have_last_ = true;

    switch (state_) {
    case State::idle:
        // Outside a frame a byte >= 0xC0 passes the next 6 - bit_width(b ^ 0xFF)
        // bytes through unexamined (the controller's rule, which counts one
        // short of UTF-8), so such a byte equal to START cannot open a frame.
        if (utf8_skip_ > 0) {
            --utf8_skip_;
            out.push_back(Stray{b});
            return;
        }
        if (b == opt_.start) {
            state_ = State::len1;
            payload_.clear();
            return;
        }
        if (b >= 0xC0) utf8_skip_ = 6 - int(std::bit_width(unsigned(b ^ 0xFF)));
        out.push_back(Stray{b});
        return;
    case State::len1:
        if (opt_.max_len > 255 && (b & 0x80)) {
            len_ = b & 0x7F;
            state_ = State::len2;
            return;
        }
        len_ = b;
        break;
    case State::len2:
        len_ |= std::size_t(b) << 7;
        break;
    case State::payload:
        payload_.push_back(b);
        if (payload_.size() == len_) state_ = State::crc1;
        return;
    case State::crc1:
        crc_rx_ = std::uint16_t(b << 8);
        state_ = State::crc2;
        return;
    case State::crc2: {
        crc_rx_ |= b;
        state_ = State::idle;
        const auto mine = crc(payload_);
        if (mine == crc_rx_) {
            out.push_back(Frame{std::move(payload_)});
            payload_.clear();
        } else if (!(opt_.tolerate_pad && (mine ^ crc_rx_) == 1)) {
            ++crc_errors_;
            out.push_back(FrameError{FrameError::crc});
        }
        return;
    }
    }
    // After the length byte(s).
    if (len_ == 0 || len_ > opt_.max_len) {
        ++frame_errors_;
        out.push_back(FrameError{FrameError::length});
        state_ = State::idle;
        return;
    }
    payload_.reserve(len_);
    state_ = State::payload;
}

std::vector<ReceiveEvent> Receiver::feed(std::span<const std::uint8_t> bytes, Time now)
{
    std::vector<ReceiveEvent> out;
    for (auto b : bytes) feed(b, now, out);
    return out;
}

} // namespace moat::bms::serial_packer
