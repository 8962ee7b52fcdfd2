// The link's byte stream split into messages and console text.
//
// Guarded mode (a tty to the controller): a message is the byte 0xC1 followed
// by exactly one msgpack object; every other byte is console text, cut into
// lines at LF with CR dropped, each line capped at 256 bytes. After a decode
// error the parser skips to the next 0xC1 (the 2022 host dropped the link).
// Plain mode (a Unix socket): back-to-back msgpack objects, no console; a
// decode error there cannot be resynchronised, so the buffer is discarded.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "msgpack.hpp"

namespace moat::bms {

inline constexpr std::uint8_t guard_byte = 0xC1;
inline constexpr std::size_t console_line_max = 256;

/// One decoded message.
struct StreamMessage {
    msgpack::Value value;
};
/// One complete console line (without CR/LF). `truncated`: the line was
/// longer than console_line_max; the rest up to its LF was dropped.
struct ConsoleLine {
    std::string text;
    bool truncated = false;
};
/// Bytes after 0xC1 (or in plain mode) that are not msgpack.
struct StreamError {
    std::string what;
};
using StreamEvent = std::variant<StreamMessage, ConsoleLine, StreamError>;

class FrameStream {
public:
    explicit FrameStream(bool guarded, msgpack::Limits limits = {}) : guarded_(guarded), limits_(limits) {}

    /// Feed received bytes; returns what they completed, in order.
    std::vector<StreamEvent> feed(std::span<const std::uint8_t> bytes);
    /// The link ended: a pending console line is returned (a partial message is dropped).
    std::vector<StreamEvent> finish();

    /// The guarded wire form of one message: 0xC1 + the object (or only the object).
    static msgpack::Bytes frame(const msgpack::Value& v, bool guarded, msgpack::EncodeOptions opt = {});

    /// Bytes currently held (a partial message or console line).
    std::size_t buffered() const { return msg_.size() + line_.size(); }

private:
    enum class State { console, message, skip_line, resync };
    void console_byte(std::uint8_t b, std::vector<StreamEvent>& out);

    bool guarded_;
    msgpack::Limits limits_;
    State state_ = State::console;
    msgpack::Bytes msg_;
    std::size_t needed_ = 0;  ///< msg_ cannot complete below this size (no re-decode until then)
    std::string line_;
};

} // namespace moat::bms
