// The Modbus PDU codec: requests, replies, exception replies, malformed PDUs.
#include "modbus.hpp"

#include <catch2/catch.hpp>

using namespace moat::meters::modbus;
using Bytes = std::vector<std::uint8_t>;

TEST_CASE("read requests encode as function, address, count")
{
    CHECK(encode_request(Request::read_holding(0xFC02, 1)) == Bytes{0x03, 0xFC, 0x02, 0x00, 0x01});
    CHECK(encode_request(Request::read_input(0x0000, 0x4C)) == Bytes{0x04, 0x00, 0x00, 0x00, 0x4C});
    CHECK(Request::read(Access::input, 1, 2) == Request::read_input(1, 2));
    CHECK(response_pdu_size(Request::read_input(0, 0x4C)) == 2 + 2 * 0x4C);
}

TEST_CASE("write and echo requests")
{
    CHECK(encode_request(Request::write_single(0x1101, 7)) == Bytes{0x06, 0x11, 0x01, 0x00, 0x07});
    CHECK(encode_request(Request::write_multiple(0x000A, {0x4040, 0x0000})) ==
          Bytes{0x10, 0x00, 0x0A, 0x00, 0x02, 0x04, 0x40, 0x40, 0x00, 0x00});
    CHECK(encode_request(Request::echo(0x5555)) == Bytes{0x08, 0x00, 0x00, 0x55, 0x55});
    CHECK(response_pdu_size(Request::write_multiple(0, {1, 2, 3})) == 5);
}

TEST_CASE("requests out of the protocol's range are refused")
{
    CHECK_THROWS_AS(Request::read_holding(0, 0), std::invalid_argument);
    CHECK_THROWS_AS(Request::read_holding(0, 126), std::invalid_argument);
    CHECK_NOTHROW(Request::read_holding(0, 125));
    CHECK_THROWS_AS(Request::read_input(0xFFFF, 2), std::invalid_argument);
    CHECK_NOTHROW(Request::read_input(0xFFFF, 1));
    CHECK_THROWS_AS(Request::write_multiple(0, {}), std::invalid_argument);
    CHECK_THROWS_AS(Request::write_multiple(0, std::vector<std::uint16_t>(124)), std::invalid_argument);
    Request bad = Request::read_holding(0, 2);
    bad.count = 200;
    CHECK_THROWS_AS(encode_request(bad), std::invalid_argument);
    bad = Request::write_multiple(0, {1, 2});
    bad.values.pop_back();
    CHECK_THROWS_AS(encode_request(bad), std::invalid_argument);
}

TEST_CASE("read replies decode into registers")
{
    const auto req = Request::read_input(0x0000, 2);
    auto r = decode_response(req, Bytes{0x04, 0x04, 0x43, 0x66, 0x80, 0x00});
    REQUIRE(r.ok());
    CHECK(r->registers == std::vector<std::uint16_t>{0x4366, 0x8000});
    CHECK_FALSE(r->is_exception());
}

TEST_CASE("exception replies are decoded with their code and named")
{
    const auto req = Request::read_holding(0x000A, 2);
    auto r = decode_response(req, Bytes{0x83, 0x02});
    REQUIRE(r.ok());
    REQUIRE(r->is_exception());
    CHECK(*r->exception == 2);
    CHECK(exception_name(*r->exception) == "ILLEGAL DATA ADDRESS");

    CHECK(exception_name(1) == "ILLEGAL FUNCTION");
    CHECK(exception_name(3) == "ILLEGAL DATA VALUE");
    CHECK(exception_name(4) == "SERVER DEVICE FAILURE");
    CHECK(exception_name(5) == "ACKNOWLEDGE");
    CHECK(exception_name(6) == "SERVER DEVICE BUSY");
    CHECK(exception_name(7) == "NEGATIVE ACKNOWLEDGE");
    CHECK(exception_name(8) == "MEMORY PARITY ERROR");
    CHECK(exception_name(0x0A) == "GATEWAY PATH UNAVAILABLE");
    CHECK(exception_name(0x0B) == "GATEWAY TARGET DEVICE FAILED TO RESPOND");
    CHECK(exception_name(0) == "UNKNOWN EXCEPTION");
    CHECK(exception_name(0x09) == "UNKNOWN EXCEPTION");
    CHECK(exception_name(0xFF) == "UNKNOWN EXCEPTION");

    ModbusException e(req, 2);
    CHECK(e.code() == 2);
    CHECK(std::string(e.what()) == "ILLEGAL DATA ADDRESS (exception 2) for read holding registers (FC03) 0x000A+2");

    // An exception reply with an unknown code is still an exception reply.
    auto odd = decode_response(req, Bytes{0x83, 0x42});
    REQUIRE(odd.ok());
    CHECK(*odd->exception == 0x42);
    // Exception replies have exactly one code byte.
    CHECK(decode_response(req, Bytes{0x83}).error().fault == Fault::truncated);
    CHECK(decode_response(req, Bytes{0x83, 0x02, 0x00}).error().fault == Fault::too_long);
}

TEST_CASE("malformed read replies are errors, never out-of-bounds reads")
{
    const auto req = Request::read_input(0x0000, 2);
    CHECK(decode_response(req, Bytes{}).error().fault == Fault::truncated);
    CHECK(decode_response(req, Bytes{0x04}).error().fault == Fault::truncated);
    CHECK(decode_response(req, Bytes{0x04, 0x04, 0x43}).error().fault == Fault::truncated);
    CHECK(decode_response(req, Bytes{0x04, 0x04, 0x43, 0x66, 0x80}).error().fault == Fault::truncated);
    CHECK(decode_response(req, Bytes{0x04, 0x04, 0x43, 0x66, 0x80, 0x00, 0x00}).error().fault == Fault::too_long);
    // The byte count must be what was asked for, even when the data length agrees with it.
    CHECK(decode_response(req, Bytes{0x04, 0x02, 0x43, 0x66}).error().fault == Fault::bad_length);
    CHECK(decode_response(req, Bytes{0x04, 0xFF, 0x43, 0x66, 0x80, 0x00}).error().fault == Fault::bad_length);
    // A reply to another function (or an exception for another function).
    CHECK(decode_response(req, Bytes{0x03, 0x04, 0x43, 0x66, 0x80, 0x00}).error().fault == Fault::unexpected_function);
    CHECK(decode_response(req, Bytes{0x83, 0x02}).error().fault == Fault::unexpected_function);

    auto err = decode_response(req, Bytes{0x04, 0x02, 0x43, 0x66}).error();
    CHECK(err.message() == "bad length: byte count 2 in the reply to read input registers (FC04) 0x0000+2, 4 expected");
}

TEST_CASE("write replies must repeat the request")
{
    const auto single = Request::write_single(0x1101, 7);
    CHECK(decode_response(single, Bytes{0x06, 0x11, 0x01, 0x00, 0x07}).ok());
    CHECK(decode_response(single, Bytes{0x06, 0x11, 0x01, 0x00, 0x08}).error().fault == Fault::echo_mismatch);
    CHECK(decode_response(single, Bytes{0x06, 0x11, 0x02, 0x00, 0x07}).error().fault == Fault::echo_mismatch);
    CHECK(decode_response(single, Bytes{0x06, 0x11, 0x01, 0x00}).error().fault == Fault::truncated);

    const auto multi = Request::write_multiple(0x000A, {0x4040, 0});
    CHECK(decode_response(multi, Bytes{0x10, 0x00, 0x0A, 0x00, 0x02}).ok());
    CHECK(decode_response(multi, Bytes{0x10, 0x00, 0x0A, 0x00, 0x01}).error().fault == Fault::echo_mismatch);
    auto ex = decode_response(multi, Bytes{0x90, 0x04});
    REQUIRE(ex.ok());
    CHECK(*ex->exception == 4);

    CHECK(decode_response(Request::echo(0x5555), Bytes{0x08, 0x00, 0x00, 0x55, 0x55}).ok());
}

TEST_CASE("Result::value() throws the error as ProtocolError")
{
    auto r = decode_response(Request::read_input(0, 1), Bytes{0x04});
    REQUIRE_FALSE(r);
    try {
        (void)r.value();
        FAIL("no exception");
    } catch (const ProtocolError& e) {
        CHECK(e.fault() == Fault::truncated);
        CHECK(std::string(e.what()) == "truncated frame: read reply of 1 bytes, 4 expected");
    }
    auto ok = decode_response(Request::read_input(0, 1), Bytes{0x04, 0x02, 0x00, 0x01});
    CHECK_THROWS_AS(ok.error(), std::logic_error);
}

TEST_CASE("server side: requests decode and replies encode (round trip)")
{
    for (const auto& req : {Request::read_holding(0xFC00, 4), Request::read_input(0x015A, 12),
                            Request::write_single(0x1102, 3), Request::write_multiple(0x000A, {0x4040, 0}),
                            Request::echo(0x5555)}) {
        auto back = decode_request(encode_request(req));
        REQUIRE(back.ok());
        CHECK(*back == req);
        std::vector<std::uint16_t> regs;
        if (req.is_read())
            for (std::uint16_t i = 0; i < req.count; ++i) regs.push_back(static_cast<std::uint16_t>(0x1000 + i));
        auto resp = decode_response(req, encode_response(req, regs));
        REQUIRE(resp.ok());
        CHECK(resp->registers == regs);
    }
    CHECK(encode_exception(Function::read_input_registers, ExceptionCode::illegal_data_address) == Bytes{0x84, 0x02});
    CHECK_THROWS_AS(encode_response(Request::read_input(0, 2), std::vector<std::uint16_t>{1}), std::invalid_argument);
    CHECK_THROWS_AS(encode_response(Request::write_single(0, 2), std::vector<std::uint16_t>{1}), std::invalid_argument);
}

TEST_CASE("server side: malformed requests")
{
    CHECK(decode_request(Bytes{}).error().fault == Fault::truncated);
    CHECK(decode_request(Bytes{0x2B, 0x0E, 0x01, 0x00}).error().fault == Fault::unsupported_function);
    CHECK(decode_request(Bytes{0x03, 0x00, 0x00, 0x00}).error().fault == Fault::truncated);
    CHECK(decode_request(Bytes{0x03, 0x00, 0x00, 0x00, 0x01, 0x00}).error().fault == Fault::too_long);
    CHECK(decode_request(Bytes{0x03, 0x00, 0x00, 0x00, 0x00}).error().fault == Fault::invalid_request);
    CHECK(decode_request(Bytes{0x04, 0x00, 0x00, 0x00, 0x7E}).error().fault == Fault::invalid_request);
    CHECK(decode_request(Bytes{0x08, 0x00, 0x01, 0x55, 0x55}).error().fault == Fault::invalid_request);
    CHECK(decode_request(Bytes{0x10, 0x00, 0x0A, 0x00}).error().fault == Fault::truncated);
    // Byte count disagrees with the register count.
    CHECK(decode_request(Bytes{0x10, 0x00, 0x0A, 0x00, 0x02, 0x02, 0x40, 0x40}).error().fault == Fault::bad_length);
    // Byte count says more than there is.
    CHECK(decode_request(Bytes{0x10, 0x00, 0x0A, 0x00, 0x02, 0x04, 0x40, 0x40}).error().fault == Fault::truncated);
}

TEST_CASE("names for logs")
{
    CHECK(function_name(Function::read_input_registers) == "read input registers (FC04)");
    CHECK(function_name(0x2B) == "function 0x2B");
    CHECK(Request::read_holding(0xFC02, 1).describe() == "read holding registers (FC03) 0xFC02+1");
    CHECK(access_name(Access::input) == "input");
    CHECK(read_function(Access::holding) == Function::read_holding_registers);
    CHECK(fault_name(Fault::bad_crc) == "bad CRC");
}
