// SerialPacker: the CRC vectors (table and bit loop), length encoding, frames
// of the worked examples, the receiver's error paths.
#include "serial_packer.hpp"
#include "test_support.hpp"

#include <catch2/catch.hpp>

using namespace moat::bms::serial_packer;
using moat::bms::test::bytes_of;
using moat::bms::test::hex;
using namespace std::chrono_literals;

TEST_CASE("CRC 0xBAAD: the check string and the example payloads, table and bit loop agree")
{
    CHECK(crc(bytes_of("123456789")) == 0xDC07);
    CHECK(crc(hex("00 01 00 7B")) == 0x7483);
    CHECK(crc(hex("00 2B 00 FC 00 00")) == 0x3975);
    // The published nibble table.
    const auto t = hex("0000 64A8 C950 ADF8 E7FB 8353 2EAB 4A03 BAAD DE05 73FD 1755 5D56 39FE 9406 F0AE");
    for (unsigned i = 0; i < 16; ++i) {
        const std::uint8_t nib[1] = {std::uint8_t(i)};  // one byte 0x0i: high nibble 0 keeps crc 0
        CHECK(crc_bitwise(nib) == crc(nib));
        CHECK(crc(nib) == std::uint16_t(t[2 * i] << 8 | t[2 * i + 1]));
    }
    for (int n = 0; n < 64; ++n) {
        Bytes b;
        for (int k = 0; k < n; ++k) b.push_back(std::uint8_t(k * 37 + n));
        CHECK(crc(b) == crc_bitwise(b));
    }
}

TEST_CASE("lengths: two bytes above 127 only when the maximum is above 255")
{
    CHECK(encode_length(356, {}) == hex("E4 02"));
    CHECK(encode_length(127, {}) == hex("7F"));
    CHECK(encode_length(128, {}) == hex("80 01"));
    CHECK(encode_length(200, PackerOptions{.max_len = 255}) == hex("C8"));
}

TEST_CASE("the worked frames of the ring")
{
    CHECK(frame(hex("00 01 00 7B")) == hex("FF 04 00 01 00 7B 74 83"));
    const auto reply = hex("00 11 02 0B 95 0E 00 00 CE 8E 00 00");
    const auto f = frame(reply);
    CHECK(Bytes(f.begin(), f.begin() + 2) == hex("FF 0C"));
    CHECK(Bytes(f.end() - 2, f.end()) == hex("9E 61"));
    CHECK(frame(hex("00 2B 00 FC 00 00")) == hex("FF 06 00 2B 00 FC 00 00 39 75"));
    CHECK_THROWS_AS(frame(Bytes{}), std::length_error);
    CHECK(frame(hex("01"), PackerOptions{.start = 0x85})[0] == 0x85);
}

TEST_CASE("the receiver returns frames and strays, and counts bad frames")
{
    Receiver rx;
    const auto t0 = Receiver::Time{} + 1h;
    Bytes wire = bytes_of("hi");
    auto f = frame(hex("00 01 00 7B"));
    wire.insert(wire.end(), f.begin(), f.end());
    Bytes big(356, 0x5A);
    auto fb = frame(big);
    wire.insert(wire.end(), fb.begin(), fb.end());
    auto evs = rx.feed(wire, t0);
    REQUIRE(evs.size() == 4);
    CHECK(std::get<Stray>(evs[0]).byte == 'h');
    CHECK(std::get<Frame>(evs[2]).payload == hex("00 01 00 7B"));
    CHECK(std::get<Frame>(evs[3]).payload == big);

    // A CRC error, then a zero length: both counted, nothing delivered.
    auto bad = frame(hex("00 01 00 7B"));
    bad.back() ^= 0x40;
    evs = rx.feed(bad, t0);
    REQUIRE(evs.size() == 1);
    CHECK(std::get<FrameError>(evs[0]).kind == FrameError::crc);
    evs = rx.feed(hex("FF 00"), t0);
    CHECK(std::get<FrameError>(evs.at(0)).kind == FrameError::length);
    CHECK(rx.crc_errors() == 1);
    CHECK(rx.frame_errors() == 1);
    rx.reset_counters();
    CHECK(rx.crc_errors() == 0);
}

TEST_CASE("an idle gap aborts a partial frame")
{
    Receiver rx;
    const auto t0 = Receiver::Time{} + 1h;
    auto f = frame(hex("00 01 00 7B"));
    CHECK(rx.feed(std::span(f).first(3), t0).empty());
    auto evs = rx.feed(std::span(f).subspan(3), t0 + 501ms);
    REQUIRE_FALSE(evs.empty());
    CHECK(std::get<FrameError>(evs[0]).kind == FrameError::idle);
    CHECK(rx.frame_errors() == 1);
    // Within the idle bound it completes.
    CHECK(rx.feed(std::span(f).first(3), t0 + 2s).empty());
    evs = rx.feed(std::span(f).subspan(3), t0 + 2s + 499ms);
    REQUIRE(evs.size() == 1);
    CHECK(std::holds_alternative<Frame>(evs[0]));
}

TEST_CASE("a padded frame with CRC XOR 1: ignored by a module, a CRC error at the controller")
{
    auto f = frame(hex("00 00 00 00"));
    f.back() ^= 1;
    const auto t0 = Receiver::Time{} + 1h;
    Receiver module(PackerOptions{.tolerate_pad = true});
    CHECK(module.feed(f, t0).empty());
    CHECK(module.crc_errors() == 0);
    Receiver controller;
    CHECK(controller.feed(f, t0).size() == 1);
    CHECK(controller.crc_errors() == 1);
}

TEST_CASE("a byte >= 0xC0 outside a frame carries the next bytes past the start check")
{
    Receiver rx(PackerOptions{.start = 0x85});
    const auto t0 = Receiver::Time{} + 1h;
    // 0xE2 (bit_width(0x1D) = 5) passes one byte unexamined: the 0x85 after it is text.
    auto evs = rx.feed(hex("E2 85"), t0);
    CHECK(evs.size() == 2);
    CHECK(std::holds_alternative<Stray>(evs[1]));
    auto f = frame(hex("01"), PackerOptions{.start = 0x85});
    evs = rx.feed(f, t0);
    REQUIRE(evs.size() == 1);
    CHECK(std::get<Frame>(evs[0]).payload == hex("01"));
}
