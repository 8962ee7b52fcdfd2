// Which register ranges to read in one request (spec §7.3), and decoding a
// block that was read.
//
// Packing follows Victron's dbus-modbus-client: registers sorted by address
// and grouped per access type; a block is closed when taking the next
// register would make it span more than 125 registers, when the hole before
// that register is longer than reading it costs compared with a request of
// its own (half the per-request byte overhead, in registers), or when a
// barrier address lies between the block's end and the register.
#pragma once

#include "registers.hpp"

#include <chrono>

namespace moat::meters {

/// How a meter is reached; decides the per-request overhead.
enum class Transport : std::uint8_t { rtu, tcp, udp };
std::string_view transport_name(Transport t) noexcept;

/// Bytes a request and its reply cost besides the register data: PDU
/// headers (5 + 2) plus, per direction, RTU unit and CRC (3), TCP/IP and
/// MBAP headers (20 + 7) or UDP and MBAP headers (8 + 7).
std::uint16_t request_overhead(Transport t) noexcept;
/// The longest hole worth reading over: (overhead + 1) / 2 registers
/// (RTU 7, TCP 31, UDP 19).
std::uint16_t hole_limit(Transport t) noexcept;

struct PlanOptions {
    std::uint16_t hole_limit = 7;
    std::uint16_t max_registers = modbus::max_read_registers;
    /// No block spans one of these addresses (a register starting at one begins a new block).
    std::vector<std::uint16_t> barriers;

    static PlanOptions for_transport(Transport t)
    {
        PlanOptions o;
        o.hole_limit = meters::hole_limit(t);
        return o;
    }
};

/// One read request and the registers it serves.
struct Block {
    Access access = Access::holding;
    std::uint16_t address = 0;
    std::uint16_t count = 0;
    /// Sorted by address; each lies wholly inside the block.
    std::vector<Register> registers;

    modbus::Request request() const { return modbus::Request::read(access, address, count); }
    /// The shortest max_age of its registers: the block is read when that has passed.
    std::chrono::milliseconds max_age() const;
    /// Whether to read it now, having last read it at `last` (nullopt: never).
    /// Like the original, a block is skipped only while every register in it
    /// is younger than its max_age.
    bool due(std::optional<std::chrono::steady_clock::time_point> last,
             std::chrono::steady_clock::time_point now) const;
    /// True when every register in it is optional (see Register::optional).
    bool optional() const;
};

/// Pack `registers` into blocks, ordered required before optional, holding
/// before input, then by address. Optional registers are never packed with
/// required ones, so a meter that refuses them loses nothing else. Throws std::invalid_argument
/// for a register that is longer than max_registers, runs past 0xFFFF or
/// whose word count does not match its encoding.
std::vector<Block> plan_blocks(std::vector<Register> registers, const PlanOptions& options);

/// One block per register, no packing: how identification registers are
/// read (once, at start-up), so a hole the meter refuses to read cannot
/// fail them.
std::vector<Block> single_blocks(std::vector<Register> registers);

/// Decode a block's words into the values of its registers. Throws
/// std::invalid_argument when `words` does not hold block.count registers.
Values decode_block(const Block& block, std::span<const std::uint16_t> words, const Limits& limits = {});

} // namespace moat::meters
