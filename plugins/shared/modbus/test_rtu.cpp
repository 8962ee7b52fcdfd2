// Modbus RTU framing: CRC, frame building, reply length detection, corrupt frames.
#include "rtu.hpp"

#include <catch2/catch.hpp>

#include <string>

using namespace moat::meters::modbus;
using Bytes = std::vector<std::uint8_t>;

TEST_CASE("CRC-16/Modbus of the catalogue check string and of known frames")
{
    const std::string check = "123456789";
    CHECK(crc16(std::span(reinterpret_cast<const std::uint8_t*>(check.data()), check.size())) == 0x4B37);
    CHECK(crc16(Bytes{}) == 0xFFFF);

    // Textbook frames: read 10 holding registers, read phase-1 voltage of an SDM630.
    CHECK(rtu_request(1, Request::read_holding(0, 10)) == Bytes{0x01, 0x03, 0x00, 0x00, 0x00, 0x0A, 0xC5, 0xCD});
    CHECK(rtu_request(1, Request::read_input(0, 2)) == Bytes{0x01, 0x04, 0x00, 0x00, 0x00, 0x02, 0x71, 0xCB});
    // The auto-baud broadcast Victron's client sends after opening a port (§7.2).
    CHECK(rtu_request(broadcast_unit, Request::echo(0x5555)) == Bytes{0x00, 0x08, 0x00, 0x00, 0x55, 0x55, 0x1E, 0xB5});
    CHECK(rtu_request(1, Request::read_holding(0xFC02, 1)) == Bytes{0x01, 0x03, 0xFC, 0x02, 0x00, 0x01, 0x15, 0x9A});
    CHECK(rtu_request(1, Request::write_single(0x1101, 7)) == Bytes{0x01, 0x06, 0x11, 0x01, 0x00, 0x07, 0x9C, 0xF4});
    CHECK(rtu_request(1, Request::write_multiple(0x000A, {0x4040, 0})) ==
          Bytes{0x01, 0x10, 0x00, 0x0A, 0x00, 0x02, 0x04, 0x40, 0x40, 0x00, 0x00, 0x67, 0xC4});

    CHECK(rtu_crc_ok(Bytes{0x01, 0x83, 0x02, 0xC0, 0xF1}));
    CHECK_FALSE(rtu_crc_ok(Bytes{0x01, 0x83, 0x02, 0xF1, 0xC0}));
    CHECK_FALSE(rtu_crc_ok(Bytes{0x01, 0x83, 0x02}));
    CHECK_FALSE(rtu_crc_ok(Bytes{}));
}

TEST_CASE("RTU reply: register values")
{
    const auto req = Request::read_input(0, 2);
    const Bytes frame{0x01, 0x04, 0x04, 0x43, 0x66, 0x80, 0x00, 0x6F, 0xDF};
    CHECK(rtu_frame(1, Bytes{0x04, 0x04, 0x43, 0x66, 0x80, 0x00}) == frame);
    auto r = rtu_decode_response(1, req, frame);
    REQUIRE(r.ok());
    CHECK(r->registers == std::vector<std::uint16_t>{0x4366, 0x8000});
}

TEST_CASE("RTU reply length is known from the request and the function byte")
{
    const auto req = Request::read_input(0, 2);
    CHECK(rtu_response_size(req, Bytes{}) == 5);
    CHECK(rtu_response_size(req, Bytes{0x01}) == 5);
    CHECK(rtu_response_size(req, Bytes{0x01, 0x04}) == 9);
    CHECK(rtu_response_size(req, Bytes{0x01, 0x84}) == 5);
    // A corrupt byte count does not change the length.
    CHECK(rtu_response_size(req, Bytes{0x01, 0x04, 0xFF}) == 9);
    // Garbage in the function byte: wait for a normal reply; the CRC will tell.
    CHECK(rtu_response_size(req, Bytes{0x01, 0x55}) == 9);
    CHECK(rtu_response_size(Request::write_single(1, 2), Bytes{0x01, 0x06}) == 8);
    CHECK(rtu_response_size(Request::read_holding(0, 125), Bytes{0x01, 0x03}) == 255);
}

TEST_CASE("RTU exception replies")
{
    const auto req = Request::read_holding(0x000A, 2);
    auto r = rtu_decode_response(1, req, Bytes{0x01, 0x83, 0x02, 0xC0, 0xF1});
    REQUIRE(r.ok());
    REQUIRE(r->is_exception());
    CHECK(exception_name(*r->exception) == "ILLEGAL DATA ADDRESS");

    auto fc4 = rtu_decode_response(1, Request::read_input(0, 2), Bytes{0x01, 0x84, 0x02, 0xC2, 0xC1});
    REQUIRE(fc4.ok());
    CHECK(*fc4->exception == 2);
}

TEST_CASE("truncated, overlong and corrupt RTU replies are errors")
{
    const auto req = Request::read_input(0, 2);
    const Bytes good{0x01, 0x04, 0x04, 0x43, 0x66, 0x80, 0x00, 0x6F, 0xDF};

    // Every prefix of a good frame is truncated, down to nothing.
    for (std::size_t n = 0; n < good.size(); ++n) {
        auto r = rtu_decode_response(1, req, std::span(good).first(n));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().fault == Fault::truncated);
    }
    Bytes longer = good;
    longer.push_back(0x00);
    CHECK(rtu_decode_response(1, req, longer).error().fault == Fault::too_long);

    // Any single flipped bit is caught by the CRC (or, in the function byte, by the length).
    for (std::size_t i = 0; i < good.size(); ++i)
        for (int bit = 0; bit < 8; ++bit) {
            Bytes bad = good;
            bad[i] ^= static_cast<std::uint8_t>(1 << bit);
            auto r = rtu_decode_response(1, req, bad);
            REQUIRE_FALSE(r.ok());
            CHECK((r.error().fault == Fault::bad_crc || r.error().fault == Fault::too_long));
        }

    auto crc = rtu_decode_response(1, req, Bytes{0x01, 0x04, 0x04, 0x43, 0x66, 0x80, 0x00, 0x00, 0x00});
    CHECK(crc.error().message() == "bad CRC: RTU reply: CRC 0x0000 received, 0xDF6F computed");

    // A valid frame from another unit.
    CHECK(rtu_decode_response(2, req, good).error().fault == Fault::unexpected_unit);
    // A valid frame whose byte count disagrees with the request.
    const auto wrong_count = rtu_frame(1, Bytes{0x04, 0x02, 0x43, 0x66, 0x80, 0x00});
    CHECK(rtu_decode_response(1, req, wrong_count).error().fault == Fault::bad_length);
    // A valid frame for another function.
    const auto other = rtu_frame(1, Bytes{0x03, 0x04, 0x43, 0x66, 0x80, 0x00});
    CHECK(rtu_decode_response(1, req, other).error().fault == Fault::unexpected_function);
}

TEST_CASE("RTU frames refuse PDUs of impossible size")
{
    CHECK_THROWS_AS(rtu_frame(1, Bytes{}), std::invalid_argument);
    CHECK_THROWS_AS(rtu_frame(1, Bytes(254)), std::invalid_argument);
    CHECK(rtu_frame(1, Bytes(253)).size() == max_rtu_frame_size);
}

TEST_CASE("RTU server side: request frames")
{
    const auto frame = rtu_request(7, Request::write_multiple(0x000A, {0x4040, 0}));
    auto size = rtu_request_size(std::span(frame).first(1));
    CHECK(size.error().fault == Fault::truncated);
    CHECK(rtu_request_size(std::span(frame).first(6)).error().fault == Fault::truncated);
    CHECK(*rtu_request_size(std::span(frame).first(7)) == frame.size());
    CHECK(*rtu_request_size(Bytes{0x01, 0x03}) == 8);
    CHECK(rtu_request_size(Bytes{0x01, 0x2B}).error().fault == Fault::unsupported_function);
    // A byte count beyond 123 registers: never a frame longer than RTU's 256 bytes.
    CHECK(rtu_request_size(Bytes{0x01, 0x10, 0x00, 0x00, 0x00, 0x7B, 0xF6}).value() == 255);
    CHECK(rtu_request_size(Bytes{0x01, 0x10, 0x00, 0x00, 0x00, 0x7C, 0xF8}).error().fault == Fault::bad_length);

    auto r = rtu_decode_request(frame);
    REQUIRE(r.ok());
    CHECK(r->unit == 7);
    CHECK(r->request == Request::write_multiple(0x000A, {0x4040, 0}));

    Bytes bad = frame;
    bad.back() ^= 1;
    CHECK(rtu_decode_request(bad).error().fault == Fault::bad_crc);
    CHECK(rtu_decode_request(std::span(frame).first(frame.size() - 1)).error().fault == Fault::truncated);
    CHECK(rtu_decode_request(rtu_frame(1, Bytes{0x03, 0x00, 0x00, 0x00, 0x00})).error().fault == Fault::invalid_request);
}
