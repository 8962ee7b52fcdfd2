#include "modbus.hpp"

#include <fmt/format.h>

namespace moat::meters::modbus {

namespace {

std::uint16_t get16(std::span<const std::uint8_t> b, std::size_t at) noexcept
{
    return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}

void put16(std::vector<std::uint8_t>& out, std::uint16_t v)
{
    out.push_back(static_cast<std::uint8_t>(v >> 8));
    out.push_back(static_cast<std::uint8_t>(v & 0xFF));
}

Error error(Fault f, std::string detail) { return Error{f, std::move(detail)}; }

// Empty when the request is well-formed, otherwise why not.
std::string request_problem(const Request& r)
{
    auto range_end_ok = [&] { return std::uint32_t(r.address) + r.count <= 0x10000; };
    switch (r.function) {
    case Function::read_holding_registers:
    case Function::read_input_registers:
        if (r.count < 1 || r.count > max_read_registers)
            return fmt::format("a read covers 1..{} registers, not {}", max_read_registers, r.count);
        if (!range_end_ok()) return fmt::format("registers 0x{:04X}+{} run past 0xFFFF", r.address, r.count);
        if (!r.values.empty()) return "a read carries no values";
        return {};
    case Function::write_single_register:
        if (r.count != 1 || r.values.size() != 1) return "FC06 writes exactly one register";
        return {};
    case Function::write_multiple_registers:
        if (r.count < 1 || r.count > max_write_registers)
            return fmt::format("FC16 writes 1..{} registers, not {}", max_write_registers, r.count);
        if (r.values.size() != r.count)
            return fmt::format("FC16 of {} registers with {} values", r.count, r.values.size());
        if (!range_end_ok()) return fmt::format("registers 0x{:04X}+{} run past 0xFFFF", r.address, r.count);
        return {};
    case Function::diagnostics:
        if (r.address != 0) return fmt::format("diagnostics sub-function {} is not supported", r.address);
        if (r.count != 1 || r.values.size() != 1) return "diagnostics echo carries one data word";
        return {};
    }
    return fmt::format("function 0x{:02X} is not supported", static_cast<unsigned>(r.function));
}

void check_request(const Request& r)
{
    if (auto p = request_problem(r); !p.empty()) throw std::invalid_argument("modbus request: " + p);
}

bool supported(std::uint8_t fc) noexcept
{
    switch (static_cast<Function>(fc)) {
    case Function::read_holding_registers:
    case Function::read_input_registers:
    case Function::write_single_register:
    case Function::diagnostics:
    case Function::write_multiple_registers:
        return true;
    }
    return false;
}

// Checks a received frame length against the size it must have.
std::optional<Error> length_problem(std::string_view what, std::size_t have, std::size_t need)
{
    if (have < need) return error(Fault::truncated, fmt::format("{} of {} bytes, {} expected", what, have, need));
    if (have > need) return error(Fault::too_long, fmt::format("{} of {} bytes, {} expected", what, have, need));
    return std::nullopt;
}

} // namespace

std::string function_name(std::uint8_t code)
{
    switch (static_cast<Function>(code)) {
    case Function::read_holding_registers: return "read holding registers (FC03)";
    case Function::read_input_registers: return "read input registers (FC04)";
    case Function::write_single_register: return "write single register (FC06)";
    case Function::diagnostics: return "diagnostics (FC08)";
    case Function::write_multiple_registers: return "write multiple registers (FC16)";
    }
    return fmt::format("function 0x{:02X}", code);
}

std::string_view access_name(Access a) noexcept { return a == Access::holding ? "holding" : "input"; }

Function read_function(Access a) noexcept
{
    return a == Access::holding ? Function::read_holding_registers : Function::read_input_registers;
}

std::string_view exception_name(std::uint8_t code) noexcept
{
    switch (static_cast<ExceptionCode>(code)) {
    case ExceptionCode::illegal_function: return "ILLEGAL FUNCTION";
    case ExceptionCode::illegal_data_address: return "ILLEGAL DATA ADDRESS";
    case ExceptionCode::illegal_data_value: return "ILLEGAL DATA VALUE";
    case ExceptionCode::server_device_failure: return "SERVER DEVICE FAILURE";
    case ExceptionCode::acknowledge: return "ACKNOWLEDGE";
    case ExceptionCode::server_device_busy: return "SERVER DEVICE BUSY";
    case ExceptionCode::negative_acknowledge: return "NEGATIVE ACKNOWLEDGE";
    case ExceptionCode::memory_parity_error: return "MEMORY PARITY ERROR";
    case ExceptionCode::gateway_path_unavailable: return "GATEWAY PATH UNAVAILABLE";
    case ExceptionCode::gateway_target_failed_to_respond: return "GATEWAY TARGET DEVICE FAILED TO RESPOND";
    }
    return "UNKNOWN EXCEPTION";
}

std::string_view fault_name(Fault f) noexcept
{
    switch (f) {
    case Fault::truncated: return "truncated frame";
    case Fault::too_long: return "frame too long";
    case Fault::bad_crc: return "bad CRC";
    case Fault::bad_protocol: return "bad protocol identifier";
    case Fault::bad_length: return "bad length";
    case Fault::unexpected_unit: return "unexpected unit";
    case Fault::unexpected_transaction: return "unexpected transaction";
    case Fault::unexpected_function: return "unexpected function";
    case Fault::echo_mismatch: return "echo mismatch";
    case Fault::unsupported_function: return "unsupported function";
    case Fault::invalid_request: return "invalid request";
    }
    return "unknown fault";
}

std::string Error::message() const { return fmt::format("{}: {}", fault_name(fault), detail); }

ModbusException::ModbusException(const Request& request, std::uint8_t code)
    : std::runtime_error(fmt::format("{} (exception {}) for {}", exception_name(code), code, request.describe())),
      code_(code)
{
}

Request Request::read(Access access, std::uint16_t address, std::uint16_t count)
{
    Request r{read_function(access), address, count, {}};
    check_request(r);
    return r;
}

Request Request::write_single(std::uint16_t address, std::uint16_t value)
{
    return Request{Function::write_single_register, address, 1, {value}};
}

Request Request::write_multiple(std::uint16_t address, std::vector<std::uint16_t> values)
{
    if (values.size() > max_write_registers)
        throw std::invalid_argument(fmt::format("modbus request: FC16 writes at most {} registers, not {}",
                                                max_write_registers, values.size()));
    Request r{Function::write_multiple_registers, address, static_cast<std::uint16_t>(values.size()), std::move(values)};
    check_request(r);
    return r;
}

Request Request::echo(std::uint16_t data) { return Request{Function::diagnostics, 0, 1, {data}}; }

bool Request::is_read() const noexcept
{
    return function == Function::read_holding_registers || function == Function::read_input_registers;
}

std::string Request::describe() const
{
    if (function == Function::diagnostics) return function_name(function) + " echo";
    return fmt::format("{} 0x{:04X}+{}", function_name(function), address, count);
}

std::vector<std::uint8_t> encode_request(const Request& r)
{
    check_request(r);
    std::vector<std::uint8_t> out;
    out.push_back(static_cast<std::uint8_t>(r.function));
    put16(out, r.address);
    switch (r.function) {
    case Function::read_holding_registers:
    case Function::read_input_registers:
        put16(out, r.count);
        break;
    case Function::write_single_register:
    case Function::diagnostics:
        put16(out, r.values[0]);
        break;
    case Function::write_multiple_registers:
        put16(out, r.count);
        out.push_back(static_cast<std::uint8_t>(2 * r.count));
        for (auto v : r.values) put16(out, v);
        break;
    }
    return out;
}

std::size_t response_pdu_size(const Request& r)
{
    check_request(r);
    // Reads: function, byte count, data. Writes and echo repeat 4 bytes.
    return r.is_read() ? 2 + 2 * std::size_t(r.count) : 5;
}

Result<Response> decode_response(const Request& request, std::span<const std::uint8_t> pdu)
{
    const auto fc = static_cast<std::uint8_t>(request.function);
    if (pdu.empty()) return error(Fault::truncated, "empty reply PDU");
    if (pdu[0] == (fc | 0x80)) {
        if (auto p = length_problem("exception reply", pdu.size(), exception_pdu_size)) return *p;
        return Response{{}, pdu[1]};
    }
    if (pdu[0] != fc)
        return error(Fault::unexpected_function,
                     fmt::format("reply with function 0x{:02X} to {}", pdu[0], request.describe()));

    const std::size_t need = response_pdu_size(request);
    if (request.is_read()) {
        if (pdu.size() >= 2 && pdu[1] != 2 * request.count)
            return error(Fault::bad_length, fmt::format("byte count {} in the reply to {}, {} expected", pdu[1],
                                                        request.describe(), 2 * request.count));
        if (auto p = length_problem("read reply", pdu.size(), need)) return *p;
        Response resp;
        resp.registers.reserve(request.count);
        for (std::size_t i = 0; i < request.count; ++i) resp.registers.push_back(get16(pdu, 2 + 2 * i));
        return resp;
    }

    if (auto p = length_problem("write reply", pdu.size(), need)) return *p;
    const std::uint16_t second = request.function == Function::write_multiple_registers ? request.count
                                                                                         : request.values[0];
    if (get16(pdu, 1) != request.address || get16(pdu, 3) != second)
        return error(Fault::echo_mismatch, fmt::format("reply 0x{:04X} 0x{:04X} to {} does not repeat it",
                                                       get16(pdu, 1), get16(pdu, 3), request.describe()));
    return Response{};
}

Result<Request> decode_request(std::span<const std::uint8_t> pdu)
{
    if (pdu.empty()) return error(Fault::truncated, "empty request PDU");
    const std::uint8_t fc = pdu[0];
    if (!supported(fc)) return error(Fault::unsupported_function, function_name(fc));
    const auto function = static_cast<Function>(fc);

    std::size_t need = 5;
    if (function == Function::write_multiple_registers) {
        if (pdu.size() < 6)
            return error(Fault::truncated, fmt::format("FC16 request of {} bytes, at least 6 expected", pdu.size()));
        need = 6 + std::size_t(pdu[5]);
    }
    if (auto p = length_problem("request", pdu.size(), need)) return *p;

    Request r{function, get16(pdu, 1), 1, {}};
    switch (function) {
    case Function::read_holding_registers:
    case Function::read_input_registers:
        r.count = get16(pdu, 3);
        break;
    case Function::write_single_register:
    case Function::diagnostics:
        r.values.push_back(get16(pdu, 3));
        break;
    case Function::write_multiple_registers:
        r.count = get16(pdu, 3);
        if (pdu[5] != 2 * std::size_t(r.count))
            return error(Fault::bad_length, fmt::format("FC16 of {} registers with byte count {}", r.count, pdu[5]));
        for (std::size_t i = 0; i < r.count; ++i) r.values.push_back(get16(pdu, 6 + 2 * i));
        break;
    }
    if (auto p = request_problem(r); !p.empty()) return error(Fault::invalid_request, p);
    return r;
}

std::vector<std::uint8_t> encode_response(const Request& request, std::span<const std::uint16_t> registers)
{
    check_request(request);
    std::vector<std::uint8_t> out{static_cast<std::uint8_t>(request.function)};
    if (request.is_read()) {
        if (registers.size() != request.count)
            throw std::invalid_argument(fmt::format("modbus reply: {} registers for {}", registers.size(),
                                                    request.describe()));
        out.push_back(static_cast<std::uint8_t>(2 * request.count));
        for (auto v : registers) put16(out, v);
        return out;
    }
    if (!registers.empty()) throw std::invalid_argument("modbus reply: a write reply carries no registers");
    put16(out, request.address);
    put16(out, request.function == Function::write_multiple_registers ? request.count : request.values[0]);
    return out;
}

std::vector<std::uint8_t> encode_exception(std::uint8_t function, std::uint8_t code)
{
    return {static_cast<std::uint8_t>(function | 0x80), code};
}

} // namespace moat::meters::modbus
