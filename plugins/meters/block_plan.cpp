#include "block_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

namespace moat::meters {

std::string_view transport_name(Transport t) noexcept
{
    switch (t) {
    case Transport::rtu: return "rtu";
    case Transport::tcp: return "tcp";
    case Transport::udp: return "udp";
    }
    return "?";
}

std::uint16_t request_overhead(Transport t) noexcept
{
    const std::uint16_t pdu = 5 + 2;
    switch (t) {
    case Transport::rtu: return pdu + 2 * (1 + 2);
    case Transport::tcp: return pdu + 2 * (20 + 7);
    case Transport::udp: return pdu + 2 * (8 + 7);
    }
    return pdu;
}

std::uint16_t hole_limit(Transport t) noexcept { return static_cast<std::uint16_t>((request_overhead(t) + 1) / 2); }

std::chrono::milliseconds Block::max_age() const
{
    auto age = std::chrono::milliseconds::max();
    for (const auto& r : registers) age = std::min(age, r.max_age);
    return age;
}

bool Block::due(std::optional<std::chrono::steady_clock::time_point> last,
                std::chrono::steady_clock::time_point now) const
{
    return !last || now - *last >= max_age();
}

bool Block::optional() const
{
    return std::all_of(registers.begin(), registers.end(), [](const Register& r) { return r.optional; });
}

namespace {

void check_register(const Register& r, std::uint16_t max_registers)
{
    const auto need = encoding_words(r.encoding);
    if ((need && r.words != need) || r.words == 0)
        throw std::invalid_argument(fmt::format("register {}: {} words for {}", r.describe(), r.words,
                                                encoding_name(r.encoding)));
    if (r.words > max_registers)
        throw std::invalid_argument(fmt::format("register {} is longer than a read of {}", r.describe(), max_registers));
    if (r.end() > 0x10000) throw std::invalid_argument(fmt::format("register {} runs past 0xFFFF", r.describe()));
}

Block start_block(Register r)
{
    Block b{r.access, r.address, r.words, {}};
    b.registers.push_back(std::move(r));
    return b;
}

} // namespace

std::vector<Block> plan_blocks(std::vector<Register> registers, const PlanOptions& options)
{
    for (const auto& r : registers) check_register(r, options.max_registers);
    // Required before optional, holding before input, then by address; the
    // blocks come out in this order too.
    std::stable_sort(registers.begin(), registers.end(), [](const Register& a, const Register& b) {
        return std::tuple(a.optional, a.access, a.address) < std::tuple(b.optional, b.access, b.address);
    });

    std::vector<Block> blocks;
    for (auto& r : registers) {
        if (!blocks.empty()) {
            Block& b = blocks.back();
            const std::uint32_t end = std::uint32_t(b.address) + b.count;
            const bool same_group = b.access == r.access && b.registers.front().optional == r.optional;
            const bool barrier = std::any_of(options.barriers.begin(), options.barriers.end(),
                                             [&](std::uint16_t a) { return a >= end && a <= r.address; });
            // Registers may overlap (or repeat): a hole is only what lies beyond the block's end.
            const std::uint32_t new_end = std::max(end, r.end());
            const bool fits = new_end - b.address <= options.max_registers &&
                              (r.address <= end || r.address - end <= options.hole_limit);
            if (same_group && fits && !barrier) {
                b.count = static_cast<std::uint16_t>(new_end - b.address);
                b.registers.push_back(std::move(r));
                continue;
            }
        }
        blocks.push_back(start_block(std::move(r)));
    }
    return blocks;
}

std::vector<Block> single_blocks(std::vector<Register> registers)
{
    std::vector<Block> blocks;
    for (auto& r : registers) {
        check_register(r, modbus::max_read_registers);
        blocks.push_back(start_block(std::move(r)));
    }
    return blocks;
}

Values decode_block(const Block& block, std::span<const std::uint16_t> words, const Limits& limits)
{
    if (words.size() != block.count)
        throw std::invalid_argument(fmt::format("block 0x{:04X}+{}: {} words given", block.address, block.count,
                                                words.size()));
    Values out;
    for (const auto& r : block.registers) out[r.path] = decode(r, words.subspan(r.address - block.address, r.words), limits);
    return out;
}

} // namespace moat::meters
