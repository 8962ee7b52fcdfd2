// Modbus TCP (MBAP) framing: round trips, stream reassembly, bad headers.
#include "tcp.hpp"

#include <catch2/catch.hpp>

using namespace moat::meters::modbus;
using Bytes = std::vector<std::uint8_t>;

TEST_CASE("MBAP request frame")
{
    CHECK(tcp_request(0x1234, 1, Request::read_holding(0xFC02, 1)) ==
          Bytes{0x12, 0x34, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0xFC, 0x02, 0x00, 0x01});
}

TEST_CASE("MBAP round trip: client request, server reply, client decode")
{
    const auto req = Request::read_input(0x0046, 6);
    const auto wire = tcp_request(0xBEEF, 1, req);

    auto got = tcp_decode_request(wire);
    REQUIRE(got.ok());
    CHECK(got->transaction == 0xBEEF);
    CHECK(got->unit == 1);
    CHECK(got->request == req);

    const std::vector<std::uint16_t> regs{0x4248, 0x0000, 0x4479, 0xC000, 0x4120, 0x0000};
    const auto reply = tcp_frame(got->transaction, got->unit, encode_response(got->request, regs));
    CHECK(reply.size() == mbap_size + 2 + 12);
    auto resp = tcp_decode_response(0xBEEF, 1, req, reply);
    REQUIRE(resp.ok());
    CHECK(resp->registers == regs);

    auto ex = tcp_decode_response(0xBEEF, 1, req, tcp_frame(0xBEEF, 1, encode_exception(0x04, 0x02)));
    REQUIRE(ex.ok());
    CHECK(exception_name(*ex->exception) == "ILLEGAL DATA ADDRESS");
}

TEST_CASE("MBAP frames are found in a byte stream")
{
    const auto req = Request::read_holding(0, 1);
    auto a = tcp_frame(1, 1, encode_response(req, std::vector<std::uint16_t>{0x0102}));
    auto b = tcp_frame(2, 1, encode_exception(0x03, 0x06));
    Bytes stream = a;
    stream.insert(stream.end(), b.begin(), b.end());

    for (std::size_t n = 0; n < 6; ++n) CHECK(tcp_frame_size(std::span(stream).first(n)).error().fault == Fault::truncated);
    auto size = tcp_frame_size(stream);
    REQUIRE(size.ok());
    CHECK(*size == a.size());
    auto first = std::span(stream).first(*size);
    auto rest = std::span(stream).subspan(*size);
    CHECK(tcp_decode_response(1, 1, req, first)->registers == std::vector<std::uint16_t>{0x0102});
    CHECK(*tcp_frame_size(rest) == b.size());
    CHECK(*tcp_decode_response(2, 1, req, rest)->exception == 6);
}

TEST_CASE("bad MBAP headers and mismatched replies")
{
    const auto req = Request::read_holding(0, 1);
    const auto good = tcp_frame(5, 1, encode_response(req, std::vector<std::uint16_t>{7}));

    Bytes protocol = good;
    protocol[3] = 1;
    CHECK(tcp_frame_size(protocol).error().fault == Fault::bad_protocol);
    CHECK(tcp_decode_response(5, 1, req, protocol).error().fault == Fault::bad_protocol);

    Bytes zero = good;
    zero[4] = 0, zero[5] = 1; // a unit id and no PDU
    CHECK(tcp_frame_size(zero).error().fault == Fault::bad_length);
    Bytes huge = good;
    huge[4] = 0x01, huge[5] = 0x00; // 256 > 254
    CHECK(tcp_frame_size(huge).error().fault == Fault::bad_length);
    CHECK(tcp_frame_size(huge).error().message() == "bad length: MBAP length 256, 2..254 expected");

    for (std::size_t n = 0; n < good.size(); ++n)
        CHECK(tcp_decode_response(5, 1, req, std::span(good).first(n)).error().fault == Fault::truncated);
    Bytes longer = good;
    longer.push_back(0);
    CHECK(tcp_decode_response(5, 1, req, longer).error().fault == Fault::too_long);

    CHECK(tcp_decode_response(4, 1, req, good).error().fault == Fault::unexpected_transaction);
    CHECK(tcp_decode_response(5, 2, req, good).error().fault == Fault::unexpected_unit);
    // Header right, PDU wrong: the byte count disagrees with the MBAP length.
    CHECK(tcp_decode_response(5, 1, req, tcp_frame(5, 1, Bytes{0x03, 0x04, 0x00, 0x07}))
              .error().fault == Fault::bad_length);
    CHECK_THROWS_AS(tcp_frame(1, 1, Bytes{}), std::invalid_argument);
    CHECK(tcp_frame(1, 1, Bytes(253)).size() == max_tcp_frame_size);
}
