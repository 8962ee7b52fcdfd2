// Block-read planning (§7.3), block scheduling by max_age, block decoding.
#include "block_plan.hpp"

#include <catch2/catch.hpp>

using namespace moat::meters;
using namespace std::chrono_literals;
using Words = std::vector<std::uint16_t>;

namespace {

Register f32(std::uint16_t address, std::string path = "", Access access = Access::input)
{
    Register r;
    r.path = path.empty() ? fmt::format("/R{:04X}", address) : path;
    r.access = access;
    r.address = address;
    r.encoding = Encoding::f32b;
    r.words = 2;
    r.max_age = max_age_for(r.path);
    return r;
}

struct Span {
    Access access;
    std::uint16_t address;
    std::uint16_t count;
    bool operator==(const Span&) const = default;
};
std::ostream& operator<<(std::ostream& os, const Span& s)
{
    return os << access_name(s.access) << " 0x" << std::hex << s.address << std::dec << "+" << s.count;
}

std::vector<Span> spans(const std::vector<Block>& blocks)
{
    std::vector<Span> out;
    for (const auto& b : blocks) out.push_back({b.access, b.address, b.count});
    return out;
}

} // namespace

TEST_CASE("request overhead and hole limits per transport (§7.3)")
{
    CHECK(request_overhead(Transport::rtu) == 13);
    CHECK(request_overhead(Transport::tcp) == 61);
    CHECK(request_overhead(Transport::udp) == 37);
    CHECK(hole_limit(Transport::rtu) == 7);
    CHECK(hole_limit(Transport::tcp) == 31);
    CHECK(hole_limit(Transport::udp) == 19);
    CHECK(PlanOptions::for_transport(Transport::tcp).hole_limit == 31);
    CHECK(PlanOptions::for_transport(Transport::tcp).max_registers == 125);
}

TEST_CASE("a hole up to the limit is read over, a longer one splits")
{
    const auto rtu = PlanOptions::for_transport(Transport::rtu);
    // 0x00..0x01, hole of 7 (0x02..0x08), 0x09..0x0A: one block.
    CHECK(spans(plan_blocks({f32(0x00), f32(0x09)}, rtu)) == std::vector<Span>{{Access::input, 0x00, 11}});
    // A hole of 8: two blocks.
    CHECK(spans(plan_blocks({f32(0x00), f32(0x0A)}, rtu)) ==
          std::vector<Span>{{Access::input, 0x00, 2}, {Access::input, 0x0A, 2}});
    // Input order does not matter.
    CHECK(spans(plan_blocks({f32(0x0A), f32(0x00)}, rtu)) ==
          std::vector<Span>{{Access::input, 0x00, 2}, {Access::input, 0x0A, 2}});
}

TEST_CASE("a block never exceeds 125 registers")
{
    PlanOptions tcp = PlanOptions::for_transport(Transport::tcp);
    // Holes of 28 registers (within TCP's 31); the last register ends at 0x7D = 125: one block.
    CHECK(spans(plan_blocks({f32(0x00), f32(0x1E), f32(0x3C), f32(0x5A), f32(0x78), f32(0x7B)}, tcp)) ==
          std::vector<Span>{{Access::input, 0x00, 125}});
    // Ending at 0x7E would make 126: the last register starts a block of its own.
    CHECK(spans(plan_blocks({f32(0x00), f32(0x1E), f32(0x3C), f32(0x5A), f32(0x78), f32(0x7C)}, tcp)) ==
          std::vector<Span>{{Access::input, 0x00, 0x7A}, {Access::input, 0x7C, 2}});
    tcp.hole_limit = 200;
    tcp.max_registers = 80;
    CHECK(spans(plan_blocks({f32(0x00), f32(0x4E)}, tcp)) == std::vector<Span>{{Access::input, 0x00, 80}});
    CHECK(spans(plan_blocks({f32(0x00), f32(0x4F)}, tcp)).size() == 2);
}

TEST_CASE("access types are never mixed, holding blocks come first")
{
    auto blocks = plan_blocks({f32(0x00, "/a", Access::input), f32(0x02, "/b", Access::holding),
                               f32(0x04, "/c", Access::input)},
                              PlanOptions::for_transport(Transport::rtu));
    CHECK(spans(blocks) == std::vector<Span>{{Access::holding, 0x02, 2}, {Access::input, 0x00, 6}});
    CHECK(blocks[0].request() == moat::meters::modbus::Request::read_holding(0x02, 2));
    CHECK(blocks[1].request() == moat::meters::modbus::Request::read_input(0x00, 6));
}

TEST_CASE("barriers split blocks")
{
    PlanOptions o = PlanOptions::for_transport(Transport::tcp);
    o.barriers = {0x10};
    CHECK(spans(plan_blocks({f32(0x00), f32(0x10), f32(0x12)}, o)) ==
          std::vector<Span>{{Access::input, 0x00, 2}, {Access::input, 0x10, 4}});
    o.barriers = {0x05};
    CHECK(spans(plan_blocks({f32(0x00), f32(0x08)}, o)) ==
          std::vector<Span>{{Access::input, 0x00, 2}, {Access::input, 0x08, 2}});
    // A barrier at the end of a contiguous block splits it too (as the original).
    o.barriers = {0x02};
    CHECK(spans(plan_blocks({f32(0x00), f32(0x02)}, o)).size() == 2);
}

TEST_CASE("overlapping registers share a block")
{
    // SDM120: /Ac/Power and /Ac/L1/Power are the same register.
    auto blocks = plan_blocks({f32(0x0C, "/Ac/Power"), f32(0x0C, "/Ac/L1/Power"), f32(0x06, "/Ac/Current")},
                              PlanOptions::for_transport(Transport::rtu));
    REQUIRE(spans(blocks) == std::vector<Span>{{Access::input, 0x06, 8}});
    auto values = decode_block(blocks[0], Words{0x4120, 0, 0, 0, 0, 0, 0x4366, 0x8000});
    CHECK(values.at("/Ac/Power") == 230.5);
    CHECK(values.at("/Ac/L1/Power") == 230.5);
    CHECK(values.at("/Ac/Current") == 10.0);
}

TEST_CASE("optional registers get blocks of their own")
{
    auto opt = f32(0x02, "/opt", Access::holding);
    opt.optional = true;
    auto blocks = plan_blocks({f32(0x00, "/a", Access::holding), opt, f32(0x04, "/b", Access::holding)},
                              PlanOptions::for_transport(Transport::rtu));
    REQUIRE(spans(blocks) == std::vector<Span>{{Access::holding, 0x00, 6}, {Access::holding, 0x02, 2}});
    CHECK_FALSE(blocks[0].optional());
    CHECK(blocks[1].optional());
}

TEST_CASE("single_blocks reads every register on its own")
{
    auto blocks = single_blocks({f32(0xFC02, "/x", Access::holding), f32(0xFC00, "/y", Access::holding)});
    CHECK(spans(blocks) == std::vector<Span>{{Access::holding, 0xFC02, 2}, {Access::holding, 0xFC00, 2}});
}

TEST_CASE("planning refuses impossible registers")
{
    const auto o = PlanOptions::for_transport(Transport::rtu);
    auto r = f32(0xFFFF);
    CHECK_THROWS_AS(plan_blocks({r}, o), std::invalid_argument);
    r = f32(0);
    r.words = 3;
    CHECK_THROWS_AS(plan_blocks({r}, o), std::invalid_argument);
    Register t;
    t.path = "/t";
    t.encoding = Encoding::text;
    t.words = 126;
    CHECK_THROWS_AS(plan_blocks({t}, o), std::invalid_argument);
    t.words = 0;
    CHECK_THROWS_AS(single_blocks({t}), std::invalid_argument);
    CHECK(plan_blocks({}, o).empty());
}

TEST_CASE("a block is due when its fastest register's max_age has passed")
{
    auto blocks = plan_blocks({f32(0x00, "/Ac/L1/Voltage"), f32(0x02, "/Ac/L1/Power"), f32(0x15A, "/Ac/L1/Energy/Forward")},
                              PlanOptions::for_transport(Transport::rtu));
    REQUIRE(blocks.size() == 2);
    CHECK(blocks[0].max_age() == 1s);
    CHECK(blocks[1].max_age() == 4s);
    const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
    CHECK(blocks[0].due(std::nullopt, t0));
    CHECK_FALSE(blocks[0].due(t0, t0 + 999ms));
    CHECK(blocks[0].due(t0, t0 + 1s));
    CHECK_FALSE(blocks[1].due(t0, t0 + 3s));
    CHECK(blocks[1].due(t0, t0 + 4s));
}

TEST_CASE("decode_block checks the word count")
{
    auto blocks = plan_blocks({f32(0x00)}, PlanOptions::for_transport(Transport::rtu));
    CHECK_THROWS_AS(decode_block(blocks[0], Words{1}), std::invalid_argument);
    CHECK(decode_block(blocks[0], Words{0x4366, 0x8000}).at("/R0000") == 230.5);
}
