// Modbus application layer (the PDU): requests, responses and exception
// replies for the function codes the meters need. Pure functions, no I/O.
//
// Reference: "MODBUS Application Protocol Specification V1.1b3". Framing for
// a transport (RTU on a serial line, MBAP on TCP) is in rtu.hpp and tcp.hpp.
//
// Contract of every decoder here: it looks only at the bytes of the span it
// is given, never past its end, and reports a malformed or unexpected frame
// as an Error (a Fault plus a sentence naming what was wrong) instead of
// throwing. Encoders validate their arguments and throw
// std::invalid_argument: a bad request is a programming error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace moat::meters::modbus {

/// The function codes spoken here.
enum class Function : std::uint8_t {
    read_holding_registers = 0x03,
    read_input_registers = 0x04,
    write_single_register = 0x06,
    /// Only sub-function 0 ("return query data"): the harmless frame Victron's
    /// client broadcasts after opening a port so auto-bauding slaves lock on.
    diagnostics = 0x08,
    write_multiple_registers = 0x10,
};

/// "read holding registers (FC03)" and so on; "function 0x2B" for others.
std::string function_name(std::uint8_t code);
inline std::string function_name(Function f) { return function_name(static_cast<std::uint8_t>(f)); }

/// The register tables a read goes to: FC03 or FC04.
enum class Access : std::uint8_t { holding, input };
/// "holding" or "input".
std::string_view access_name(Access a) noexcept;
/// FC03 for holding, FC04 for input registers.
Function read_function(Access a) noexcept;

/// Exception codes of a Modbus exception reply (specification §7).
enum class ExceptionCode : std::uint8_t {
    illegal_function = 0x01,
    illegal_data_address = 0x02,
    illegal_data_value = 0x03,
    server_device_failure = 0x04,
    acknowledge = 0x05,
    server_device_busy = 0x06,
    negative_acknowledge = 0x07,
    memory_parity_error = 0x08,
    gateway_path_unavailable = 0x0A,
    gateway_target_failed_to_respond = 0x0B,
};
/// The specification's name in capitals ("ILLEGAL DATA ADDRESS");
/// "UNKNOWN EXCEPTION" for a code it does not define.
std::string_view exception_name(std::uint8_t code) noexcept;

inline constexpr std::size_t max_pdu_size = 253;
/// Registers per read (FC03/FC04) and per write (FC16) request.
inline constexpr std::uint16_t max_read_registers = 125;
inline constexpr std::uint16_t max_write_registers = 123;

/// A request as a client sends it and a server receives it.
struct Request {
    Function function{};
    /// First register; for FC08 the sub-function (always 0 here).
    std::uint16_t address = 0;
    /// Registers read or written (FC06: 1; FC08: 1 data word).
    std::uint16_t count = 0;
    /// FC06: the value; FC16: `count` values; FC08: the data word echoed back.
    std::vector<std::uint16_t> values;

    /// Each factory throws std::invalid_argument for a count outside the
    /// protocol's range or a register range past 0xFFFF.
    static Request read(Access access, std::uint16_t address, std::uint16_t count);
    static Request read_holding(std::uint16_t address, std::uint16_t count) { return read(Access::holding, address, count); }
    static Request read_input(std::uint16_t address, std::uint16_t count) { return read(Access::input, address, count); }
    static Request write_single(std::uint16_t address, std::uint16_t value);
    static Request write_multiple(std::uint16_t address, std::vector<std::uint16_t> values);
    /// FC08 sub-function 0 with one data word (Victron sends 0x5555).
    static Request echo(std::uint16_t data);

    /// True for FC03/FC04.
    bool is_read() const noexcept;
    /// "read input registers (FC04) 0x0000+2" — for error messages.
    std::string describe() const;

    bool operator==(const Request&) const = default;
};

/// A decoded reply to a Request: either the registers read (empty for a
/// write or echo, whose reply only repeats the request and was checked
/// against it) or a Modbus exception.
struct Response {
    std::vector<std::uint16_t> registers;
    /// Set when the device answered with an exception reply.
    std::optional<std::uint8_t> exception;

    bool is_exception() const noexcept { return exception.has_value(); }
    bool operator==(const Response&) const = default;
};

/// Why a frame could not be decoded.
enum class Fault {
    /// Fewer bytes than the frame needs: on a stream, wait for more.
    truncated,
    /// More bytes than one frame has.
    too_long,
    /// RTU checksum mismatch.
    bad_crc,
    /// MBAP protocol identifier not 0.
    bad_protocol,
    /// A length or byte-count field contradicts the frame or the request.
    bad_length,
    /// A reply from another unit than the one asked.
    unexpected_unit,
    /// A TCP reply with another transaction id (typically a late reply to an
    /// earlier request that timed out: skip it and keep reading).
    unexpected_transaction,
    /// A reply with another function code than the request's.
    unexpected_function,
    /// A write or echo reply that does not repeat the request.
    echo_mismatch,
    /// A request with a function code not supported here (a server answers
    /// ILLEGAL FUNCTION).
    unsupported_function,
    /// A request whose fields are out of the protocol's range (a server
    /// answers ILLEGAL DATA VALUE).
    invalid_request,
};
/// "truncated", "bad CRC", ...
std::string_view fault_name(Fault f) noexcept;

/// A decoding failure: what kind, and a sentence with the details.
struct Error {
    Fault fault;
    std::string detail;
    /// "<fault name>: <detail>".
    std::string message() const;
};

/// Thrown by Result::value() on an error, so callers that cannot handle a
/// fault locally get an exception that names it.
class ProtocolError : public std::runtime_error {
public:
    explicit ProtocolError(Error e) : std::runtime_error(e.message()), error_(std::move(e)) {}
    Fault fault() const noexcept { return error_.fault; }
    const Error& error() const noexcept { return error_; }

private:
    Error error_;
};

/// Thrown by the I/O layer when a device answered with an exception reply.
class ModbusException : public std::runtime_error {
public:
    /// "ILLEGAL DATA ADDRESS (exception 2) for read input registers (FC04) 0x000A+2".
    ModbusException(const Request& request, std::uint8_t code);
    std::uint8_t code() const noexcept { return code_; }

private:
    std::uint8_t code_;
};

/// A value or the Error that prevented it (C++20 has no std::expected).
template <class T>
class Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }

    /// The value; throws ProtocolError when this holds an error.
    const T& value() const& {
        if (!ok()) throw ProtocolError(std::get<1>(v_));
        return std::get<0>(v_);
    }
    T&& value() && {
        if (!ok()) throw ProtocolError(std::get<1>(v_));
        return std::get<0>(std::move(v_));
    }
    const T& operator*() const& { return value(); }
    const T* operator->() const { return &value(); }

    /// The error; throws std::logic_error when this holds a value.
    const Error& error() const {
        if (ok()) throw std::logic_error("modbus::Result: no error");
        return std::get<1>(v_);
    }

private:
    std::variant<T, Error> v_;
};

// ---- client side ----

/// The request PDU (function code and data). Throws std::invalid_argument
/// for a request the factories would have refused.
std::vector<std::uint8_t> encode_request(const Request& request);

/// Size of the normal (non-exception) reply PDU to `request`.
std::size_t response_pdu_size(const Request& request);
/// Size of an exception reply PDU.
inline constexpr std::size_t exception_pdu_size = 2;

/// Decode the reply PDU to `request`. An exception reply is a valid Response
/// (its `exception` is set); anything else malformed is an Error.
Result<Response> decode_response(const Request& request, std::span<const std::uint8_t> pdu);

// ---- server side (simulators, tests) ----

/// Decode a request PDU. Errors: truncated, too_long, bad_length,
/// unsupported_function, invalid_request.
Result<Request> decode_request(std::span<const std::uint8_t> pdu);

/// The normal reply PDU to `request`; `registers` are the registers read
/// (exactly request.count of them) and must be empty for other functions.
/// Throws std::invalid_argument otherwise.
std::vector<std::uint8_t> encode_response(const Request& request, std::span<const std::uint16_t> registers = {});

/// An exception reply PDU for function `function`.
std::vector<std::uint8_t> encode_exception(std::uint8_t function, std::uint8_t code);
inline std::vector<std::uint8_t> encode_exception(Function function, ExceptionCode code)
{
    return encode_exception(static_cast<std::uint8_t>(function), static_cast<std::uint8_t>(code));
}

} // namespace moat::meters::modbus
