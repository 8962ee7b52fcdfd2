// Every register map of §4, end to end: a simulated meter with known
// register contents is probed, initialised and read through the codec
// (RTU and TCP), and the published values are compared exactly (value and
// kind) with what the spec says the paths carry.
#include "test_fake_meter.hpp"

#include <catch2/catch.hpp>

using namespace moat::meters;
using namespace moat::meters::test;
using moat::Value;
using A = Access;

namespace {

void check_values(const Values& got, const Values& want)
{
    for (const auto& [path, v] : want) {
        INFO("path " << path);
        auto it = got.find(path);
        REQUIRE(it != got.end());
        INFO("got " << moat::repr(it->second) << " (" << moat::kind_name(it->second) << "), want " << moat::repr(v)
                    << " (" << moat::kind_name(v) << ")");
        CHECK(it->second.kind() == v.kind());
        CHECK(it->second == v);
    }
    for (const auto& [path, v] : got) {
        INFO("unexpected path " << path << " = " << moat::repr(v));
        CHECK(want.contains(path));
    }
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

// ---- Eastron SDM630 v1/v2, SDM72D v2 (§4.1) ----

// Input registers 0x0000..0x0180 exist (zero) so block holes can be read.
void sdm630_measurements(FakeMeter& m)
{
    m.fill(A::input, 0x0000, 0x0180);
    m.f32(A::input, 0x0000, 230.5f);
    m.f32(A::input, 0x0002, 231.25f);
    m.f32(A::input, 0x0004, 229.75f);
    m.f32(A::input, 0x0006, 1.5f);
    m.f32(A::input, 0x0008, 2.25f);
    m.f32(A::input, 0x000A, 0.5f);
    m.f32(A::input, 0x000C, 345.75f);
    m.f32(A::input, 0x000E, -120.5f);
    m.f32(A::input, 0x0010, 100.0f);
    m.f32(A::input, 0x0030, 4.25f);
    m.f32(A::input, 0x0034, 325.25f);
    m.f32(A::input, 0x0046, 50.0f);
    m.f32(A::input, 0x0048, 1234.5f);
    m.f32(A::input, 0x004A, 56.25f);
    m.f32(A::input, 0x015A, 400.5f);
    m.f32(A::input, 0x015C, 500.25f);
    m.f32(A::input, 0x015E, 333.75f);
    m.f32(A::input, 0x0160, 10.5f);
    m.f32(A::input, 0x0162, 20.25f);
    m.f32(A::input, 0x0164, 25.5f);
}

void sdm630_info(FakeMeter& m, std::uint16_t meter_code, float system_type)
{
    m.set(A::holding, 0xFC02, {meter_code, 0x0105});
    m.u32b(A::holding, 0xFC00, 20160001);
    m.f32(A::holding, 0x000A, system_type);
    m.f32(A::holding, 0x0014, 1.0f); // node address 1
    m.f32(A::holding, 0x001C, 2.0f); // 9600 Bd
}

const Values sdm630_three_phase = {
    {"/Ac/Power", 325.25},
    {"/Ac/Current", 4.25},
    {"/Ac/Frequency", 50.0},
    {"/Ac/Energy/Forward", 1234.5},
    {"/Ac/Energy/Reverse", 56.25},
    {"/Ac/L1/Voltage", 230.5},
    {"/Ac/L2/Voltage", 231.25},
    {"/Ac/L3/Voltage", 229.75},
    {"/Ac/L1/Current", 1.5},
    {"/Ac/L2/Current", 2.25},
    {"/Ac/L3/Current", 0.5},
    {"/Ac/L1/Power", 345.75},
    {"/Ac/L2/Power", -120.5},
    {"/Ac/L3/Power", 100.0},
    {"/Ac/L1/Energy/Forward", 400.5},
    {"/Ac/L2/Energy/Forward", 500.25},
    {"/Ac/L3/Energy/Forward", 333.75},
    {"/Ac/L1/Energy/Reverse", 10.5},
    {"/Ac/L2/Energy/Reverse", 20.25},
    {"/Ac/L3/Energy/Reverse", 25.5},
};

} // namespace

TEST_CASE("SDM630 v2, three phases, over RTU and TCP")
{
    for (auto transport : {Transport::rtu, Transport::tcp}) {
        INFO("transport " << transport_name(transport));
        FakeMeter m;
        sdm630_info(m, 0x0070, 3.0f);
        sdm630_measurements(m);
        Client c(m, transport);
        auto d = bring_up(c);

        CHECK(d.id.type->kind == MeterKind::sdm630v2);
        CHECK(d.id.model == "SDM630Modbusv2");
        CHECK(d.id.type->product_name == "Eastron SDM630-Modbus v2");
        CHECK(d.id.type->product_id == 0xB023);
        check_values(d.info, {{"/HardwareVersion", 0x0070},
                              {"/FirmwareVersion", 0x0105},
                              {"/PhaseConfig", 3.0},
                              {"/Serial", "20160001"},
                              {"legacy-serial", "1065353216"}});
        CHECK(d.phases == 3);
        CHECK(d.identity.serial == "20160001");
        CHECK(d.identity.ident == "cg_20160001");
        CHECK(d.identity.legacy_ident == "cg_1065353216");
        check_values(d.data, sdm630_three_phase);

        if (transport == Transport::rtu)
            CHECK(spans(d.blocks) == std::vector<Span>{{A::input, 0x0000, 18}, {A::input, 0x0030, 6},
                                                      {A::input, 0x0046, 6}, {A::input, 0x015A, 12}});
        else
            CHECK(spans(d.blocks) == std::vector<Span>{{A::input, 0x0000, 0x4C}, {A::input, 0x015A, 12}});
    }
}

TEST_CASE("SDM630 info is read with FC03 and measurements with FC04 (§2.1)")
{
    FakeMeter m;
    sdm630_info(m, 0x0079, 3.0f);
    sdm630_measurements(m);
    Client c(m, Transport::rtu);
    auto d = bring_up(c);
    CHECK(d.id.model == "SDM630Modbusv2");
    for (const auto& req : m.log) {
        INFO(req.describe());
        if (req.address >= 0xFC00 || req.address == 0x000A || req.address == 0x0014 || req.address == 0x8960 ||
            req.address == 0x000B)
            CHECK(req.function == modbus::Function::read_holding_registers);
        else
            CHECK(req.function == modbus::Function::read_input_registers);
    }
}

TEST_CASE("SDM630 system type decides the phases")
{
    SECTION("1P2W: phase 1 only")
    {
        FakeMeter m;
        sdm630_info(m, 0x0070, 1.0f);
        sdm630_measurements(m);
        Client c(m, Transport::rtu);
        auto d = bring_up(c);
        CHECK(d.phases == 1);
        check_values(d.data, {{"/Ac/Power", 325.25},
                              {"/Ac/Current", 4.25},
                              {"/Ac/Frequency", 50.0},
                              {"/Ac/Energy/Forward", 1234.5},
                              {"/Ac/Energy/Reverse", 56.25},
                              {"/Ac/L1/Voltage", 230.5},
                              {"/Ac/L1/Current", 1.5},
                              {"/Ac/L1/Power", 345.75},
                              {"/Ac/L1/Energy/Forward", 400.5},
                              {"/Ac/L1/Energy/Reverse", 10.5}});
    }
    SECTION("3P3W: three phases")
    {
        FakeMeter m;
        sdm630_info(m, 0x0070, 2.0f);
        sdm630_measurements(m);
        Client c(m, Transport::rtu);
        CHECK(bring_up(c).phases == 3);
    }
    SECTION("undefined: totals only")
    {
        FakeMeter m;
        sdm630_info(m, 0x0070, 0.0f);
        sdm630_measurements(m);
        Client c(m, Transport::rtu);
        auto d = bring_up(c);
        CHECK(d.phases == 0);
        check_values(d.data, {{"/Ac/Power", 325.25},
                              {"/Ac/Current", 4.25},
                              {"/Ac/Frequency", 50.0},
                              {"/Ac/Energy/Forward", 1234.5},
                              {"/Ac/Energy/Reverse", 56.25}});
    }
    SECTION("garbage: the device fails with a clear message")
    {
        FakeMeter m;
        sdm630_info(m, 0x0070, 2.5f);
        sdm630_measurements(m);
        Client c(m, Transport::rtu);
        CHECK_THROWS_WITH(bring_up(c), "Eastron SDM630-Modbus v2: /PhaseConfig 2.5 is not a configuration of 0..3");
    }
}

TEST_CASE("SDM72D v2: both meter codes, same map as the SDM630")
{
    for (auto [code, model] : {std::pair<std::uint16_t, std::string_view>{0x0089, "SDM72DMv2"}, {0x0087, "SDM72Dv2"}}) {
        FakeMeter m;
        sdm630_info(m, code, 3.0f);
        sdm630_measurements(m);
        Client c(m, Transport::tcp);
        auto d = bring_up(c);
        CHECK(d.id.type->kind == MeterKind::sdm72dv2);
        CHECK(d.id.model == model);
        CHECK(d.id.type->product_name == "Eastron SDM72Dv2");
        check_values(d.data, sdm630_three_phase);
    }
}

TEST_CASE("SDM630 v1: identified by the baud-rate register, 0xFCxx block optional")
{
    FakeMeter m;
    // No 0xFC00..0xFC03 at all: the v1 has only the classic holding registers.
    m.f32(A::holding, 0x000A, 3.0f);
    m.f32(A::holding, 0x0014, 2.0f); // node address 2
    m.f32(A::holding, 0x001C, 4.0f); // 38400 Bd: high word 16512
    sdm630_measurements(m);
    Client c(m, Transport::rtu);
    auto d = bring_up(c);
    CHECK(d.id.type->kind == MeterKind::sdm630v1);
    CHECK(d.id.model == "SDM630Modbusv1");
    check_values(d.info, {{"/HardwareVersion", Value()},
                          {"/FirmwareVersion", Value()},
                          {"/PhaseConfig", 3.0},
                          {"/Serial", Value()},
                          {"legacy-serial", "1073741824"}});
    // Without the real serial, the original's pseudo-serial is the identity (§6).
    CHECK(d.identity.serial == "1073741824");
    CHECK(d.identity.ident == "cg_1073741824");
    CHECK_FALSE(d.identity.legacy_ident);
    check_values(d.data, sdm630_three_phase);
}

TEST_CASE("a v2 at 9600 Bd is not taken for a v1 (§10)")
{
    FakeMeter m;
    sdm630_info(m, 0x0070, 3.0f); // 0x001C = 2.0: the v1 test would match
    sdm630_measurements(m);
    Client c(m, Transport::rtu);
    CHECK(c.probe()->type->kind == MeterKind::sdm630v2);
}

TEST_CASE("SDM120: single phase whatever the system type says (§4.2)")
{
    for (auto transport : {Transport::rtu, Transport::tcp})
        for (bool has_system_type : {false, true}) {
            INFO("transport " << transport_name(transport) << ", system type register " << has_system_type);
            FakeMeter m;
            m.set(A::holding, 0xFC02, {0x0020, 0x0102});
            m.u32b(A::holding, 0xFC00, 19123456);
            if (has_system_type) m.f32(A::holding, 0x000A, 3.0f);
            m.fill(A::input, 0x0000, 0x0050);
            m.f32(A::input, 0x0000, 229.5f);
            m.f32(A::input, 0x0006, 3.25f);
            m.f32(A::input, 0x000C, -745.5f);
            m.f32(A::input, 0x0046, 49.875f);
            m.f32(A::input, 0x0048, 4321.25f);
            m.f32(A::input, 0x004A, 12.75f);
            Client c(m, transport);
            auto d = bring_up(c);
            CHECK(d.id.type->kind == MeterKind::sdm120);
            CHECK(d.id.model == "SDM120Modbus");
            CHECK(d.id.type->product_name == "Eastron SDM120-Modbus");
            check_values(d.info, {{"/HardwareVersion", 0x0020},
                                  {"/FirmwareVersion", 0x0102},
                                  {"/PhaseConfig", has_system_type ? Value(3.0) : Value()},
                                  {"/Serial", "19123456"}});
            CHECK(d.phases == 1);
            CHECK(d.identity.ident == "cg_19123456");
            CHECK_FALSE(d.identity.legacy_ident);
            check_values(d.data, {{"/Ac/Power", -745.5},
                                  {"/Ac/Current", 3.25},
                                  {"/Ac/Frequency", 49.875},
                                  {"/Ac/Energy/Forward", 4321.25},
                                  {"/Ac/Energy/Reverse", 12.75},
                                  {"/Ac/L1/Voltage", 229.5},
                                  {"/Ac/L1/Current", 3.25},
                                  {"/Ac/L1/Power", -745.5},
                                  {"/Ac/L1/Energy/Forward", 4321.25},
                                  {"/Ac/L1/Energy/Reverse", 12.75}});
            // The hole before 0x0046 is too long even for TCP.
            CHECK(spans(d.blocks) == std::vector<Span>{{A::input, 0x0000, 14}, {A::input, 0x0046, 6}});
        }
}

namespace {

// ---- ABB B2x (§4.3) ----

void abb(FakeMeter& m, const std::string& type_designation)
{
    m.text(A::holding, 0x8960, type_designation, 6);
    m.text(A::holding, 0x8908, "1.3.0", 8);
    m.u32b(A::holding, 0x8900, 7012345);
    m.fill(A::holding, 0x5000, 0x5007);
    m.fill(A::holding, 0x5460, 0x5477);
    m.fill(A::holding, 0x5B00, 0x5B2D);
    m.u64b(A::holding, 0x5000, 100000);                // 1000.0 kWh
    m.u64b(A::holding, 0x5004, 0xFFFF'FFFF'FFFF'FFFF); // not available
    m.u32b(A::holding, 0x5B00, 2305);
    m.u32b(A::holding, 0x5B02, 2310);
    m.u32b(A::holding, 0x5B04, 2299);
    m.u32b(A::holding, 0x5B0C, 150);
    m.u32b(A::holding, 0x5B0E, 225);
    m.u32b(A::holding, 0x5B10, 75);
    m.s32b(A::holding, 0x5B14, 32525);
    m.s32b(A::holding, 0x5B16, 34575);
    m.s32b(A::holding, 0x5B18, -12050);
    m.s32b(A::holding, 0x5B1A, 10000);
    m.set(A::holding, 0x5B2C, {5000});
    m.u64b(A::holding, 0x5460, 12345);
    m.u64b(A::holding, 0x5464, 23456);
    m.u64b(A::holding, 0x5468, 34567);
    m.u64b(A::holding, 0x546C, 1);
    m.u64b(A::holding, 0x5470, 0);
    m.u64b(A::holding, 0x5474, 0xFFFF'FFFF'FFFF'FFFF);
}

} // namespace

TEST_CASE("ABB B23: three phases, over RTU and TCP")
{
    for (auto transport : {Transport::rtu, Transport::tcp}) {
        INFO("transport " << transport_name(transport));
        FakeMeter m;
        abb(m, "B23 312-100");
        Client c(m, transport);
        auto d = bring_up(c);
        CHECK(d.id.type->kind == MeterKind::abb_b2x);
        CHECK(d.id.model == "ABB_B2x");
        CHECK(d.id.type->product_name == "ABB B2x-Series Power Meter");
        CHECK(d.id.type->product_id == 0xB017);
        check_values(d.info,
                     {{"/HardwareVersion", "B23 312-100"}, {"/FirmwareVersion", "1.3.0"}, {"/Serial", "7012345"}});
        CHECK(d.phases == 3);
        CHECK(d.identity.ident == "cg_7012345");
        check_values(d.data, {{"/Ac/Power", 325.25},
                              {"/Ac/Frequency", 50.0},
                              {"/Ac/Energy/Forward", 1000.0},
                              {"/Ac/Energy/Reverse", Value()},
                              {"/Ac/L1/Voltage", 230.5},
                              {"/Ac/L2/Voltage", 231.0},
                              {"/Ac/L3/Voltage", 229.9},
                              {"/Ac/L1/Current", 1.5},
                              {"/Ac/L2/Current", 2.25},
                              {"/Ac/L3/Current", 0.75},
                              {"/Ac/L1/Power", 345.75},
                              {"/Ac/L2/Power", -120.5},
                              {"/Ac/L3/Power", 100.0},
                              {"/Ac/L1/Energy/Forward", 123.45},
                              {"/Ac/L2/Energy/Forward", 234.56},
                              {"/Ac/L3/Energy/Forward", 345.67},
                              {"/Ac/L1/Energy/Reverse", 0.01},
                              {"/Ac/L2/Energy/Reverse", 0.0},
                              {"/Ac/L3/Energy/Reverse", Value()}});
        if (transport == Transport::rtu)
            CHECK(spans(d.blocks) == std::vector<Span>{{A::holding, 0x5000, 8}, {A::holding, 0x5460, 24},
                                                      {A::holding, 0x5B00, 28}, {A::holding, 0x5B2C, 1}});
        else
            CHECK(spans(d.blocks) ==
                  std::vector<Span>{{A::holding, 0x5000, 8}, {A::holding, 0x5460, 24}, {A::holding, 0x5B00, 45}});
    }
}

TEST_CASE("ABB B24 has three phases, the B21 one (§10)")
{
    {
        FakeMeter m;
        abb(m, "B24 352-100");
        Client c(m, Transport::rtu);
        CHECK(bring_up(c).phases == 3);
    }
    FakeMeter m;
    abb(m, "B21 312-100");
    Client c(m, Transport::rtu);
    auto d = bring_up(c);
    CHECK(d.phases == 1);
    check_values(d.data, {{"/Ac/Power", 325.25},
                          {"/Ac/Frequency", 50.0},
                          {"/Ac/Energy/Forward", 1000.0},
                          {"/Ac/Energy/Reverse", Value()},
                          {"/Ac/L1/Voltage", 230.5},
                          {"/Ac/L1/Current", 1.5},
                          {"/Ac/L1/Power", 345.75},
                          {"/Ac/L1/Energy/Forward", 123.45},
                          {"/Ac/L1/Energy/Reverse", 0.01}});
    CHECK(spans(d.blocks) == std::vector<Span>{{A::holding, 0x5000, 8}, {A::holding, 0x5460, 4}, {A::holding, 0x546C, 4},
                                              {A::holding, 0x5B00, 2}, {A::holding, 0x5B0C, 12},
                                              {A::holding, 0x5B2C, 1}});
}

namespace {

// ---- Carlo Gavazzi EM24 (§4.4) ----

void em24(FakeMeter& m, std::uint16_t model, std::uint16_t phase_config, std::uint16_t application = 7)
{
    m.set(A::holding, 0x000B, {model});
    m.set(A::holding, 0x0302, {7, 0x0103});
    m.set(A::holding, 0x1101, {application, phase_config});
    m.text(A::holding, 0x1300, "BP1234567890X", 7);
    m.fill(A::holding, 0x0000, 0x005D);
    m.set(A::holding, 0x000B, {model}); // (fill overwrote it)
    m.s32l(A::holding, 0x0000, 2305);
    m.s32l(A::holding, 0x0002, 2312);
    m.s32l(A::holding, 0x0004, 2299);
    m.s32l(A::holding, 0x000C, 1500);
    m.s32l(A::holding, 0x000E, -250);
    m.s32l(A::holding, 0x0010, 10);
    m.s32l(A::holding, 0x0012, 3457);
    m.s32l(A::holding, 0x0014, -1205);
    m.s32l(A::holding, 0x0016, 0);
    m.s32l(A::holding, 0x0028, 2252);
    m.set(A::holding, 0x0036, {0xFFFF, 500});
    m.s32l(A::holding, 0x003E, 12345);
    m.s32l(A::holding, 0x0046, 4000);
    m.s32l(A::holding, 0x0048, 5001);
    m.s32l(A::holding, 0x004A, 3344);
    m.s32l(A::holding, 0x005C, 5);
}

} // namespace

TEST_CASE("EM24 AV5, three phases with phase sequence, over RTU and TCP")
{
    for (auto transport : {Transport::rtu, Transport::tcp}) {
        INFO("transport " << transport_name(transport));
        FakeMeter m;
        em24(m, 72, 0);
        Client c(m, transport);
        auto d = bring_up(c);
        CHECK(d.id.type->kind == MeterKind::em24rtu);
        CHECK(d.id.model == "EM24-DIN AV5");
        CHECK(d.id.type->product_name == "Carlo Gavazzi EM24RTU Energy Meter");
        check_values(d.info, {{"/HardwareVersion", 7},
                              {"/FirmwareVersion", 0x0103},
                              {"/PhaseConfig", 0},
                              {"/Serial", "BP1234567890X"}});
        CHECK(d.phases == 3);
        CHECK(d.identity.ident == "cg_BP1234567890X");
        check_values(d.data, {{"/Ac/Power", 225.2},
                              {"/Ac/Frequency", 50.0},
                              {"/Ac/Energy/Forward", 1234.5},
                              {"/Ac/Energy/Reverse", 0.5},
                              {"/PhaseSequence", 1},
                              {"/Ac/L1/Voltage", 230.5},
                              {"/Ac/L2/Voltage", 231.2},
                              {"/Ac/L3/Voltage", 229.9},
                              {"/Ac/L1/Current", 1.5},
                              {"/Ac/L2/Current", -0.25},
                              {"/Ac/L3/Current", 0.01},
                              {"/Ac/L1/Power", 345.7},
                              {"/Ac/L2/Power", -120.5},
                              {"/Ac/L3/Power", 0.0},
                              {"/Ac/L1/Energy/Forward", 400.0},
                              {"/Ac/L2/Energy/Forward", 500.1},
                              {"/Ac/L3/Energy/Forward", 334.4}});
        if (transport == Transport::rtu)
            CHECK(spans(d.blocks) == std::vector<Span>{{A::holding, 0x0000, 24}, {A::holding, 0x0028, 2},
                                                      {A::holding, 0x0036, 22}, {A::holding, 0x005C, 2}});
        else
            CHECK(spans(d.blocks) == std::vector<Span>{{A::holding, 0x0000, 0x5E}});
    }
}

TEST_CASE("EM24 phase configurations and models")
{
    for (auto [code, model] : {std::pair<std::uint16_t, std::string_view>{70, "EM24-DIN AV9"},
                               {71, "EM24-DIN AV2"}, {72, "EM24-DIN AV5"}, {73, "EM24-DIN AV6"}}) {
        FakeMeter m;
        em24(m, code, 0);
        Client c(m, Transport::rtu);
        CHECK(c.probe()->model == model);
    }
    for (auto [config, phases] : {std::pair<std::uint16_t, unsigned>{0, 3}, {1, 3}, {2, 2}, {3, 1}, {4, 3}}) {
        INFO("PhaseConfig " << config);
        FakeMeter m;
        em24(m, 71, config);
        Client c(m, Transport::rtu);
        auto d = bring_up(c);
        CHECK(d.phases == phases);
        CHECK(d.data.contains("/PhaseSequence") == (phases == 3));
        CHECK(d.data.contains("/Ac/L2/Voltage") == (phases >= 2));
        CHECK(d.data.contains("/Ac/L3/Voltage") == (phases == 3));
        CHECK(d.data.at("/Ac/L1/Voltage") == 230.5);
    }
    FakeMeter m;
    em24(m, 71, 5);
    Client c(m, Transport::rtu);
    CHECK_THROWS_WITH(bring_up(c), "Carlo Gavazzi EM24RTU Energy Meter: /PhaseConfig 5 is not a configuration of 0..4");
}

TEST_CASE("EM24 application register is set to H (7) before use")
{
    FakeMeter m;
    em24(m, 72, 0, 5);
    Client c(m, Transport::rtu);
    auto d = bring_up(c);
    CHECK(m.holding.at(0x1101) == 7);
    CHECK(std::find(m.log.begin(), m.log.end(), modbus::Request::write_single(0x1101, 7)) != m.log.end());
    CHECK(d.phases == 3);

    FakeMeter stubborn;
    em24(stubborn, 72, 0, 5);
    stubborn.ignores_writes.insert(0x1101);
    Client c2(stubborn, Transport::rtu);
    CHECK_THROWS_WITH(bring_up(c2), "failed to set application H");

    FakeMeter fine;
    em24(fine, 72, 0, 7);
    Client c3(fine, Transport::rtu);
    bring_up(c3);
    CHECK(std::none_of(fine.log.begin(), fine.log.end(),
                       [](const modbus::Request& r) { return r.function == modbus::Function::write_single_register; }));
}

TEST_CASE("a value out of range in a block is invalid, its neighbours are not")
{
    FakeMeter m;
    sdm630_info(m, 0x0070, 3.0f);
    sdm630_measurements(m);
    m.set(A::input, 0x0002, {0x7FC0, 0x0000});         // L2 voltage NaN
    m.f32(A::input, 0x0008, 1e9f);                     // L2 current 1 GA
    m.f32(A::input, 0x0048, -5.0f);                    // negative energy counter
    Client c(m, Transport::rtu);
    auto d = bring_up(c);
    auto want = sdm630_three_phase;
    want["/Ac/L2/Voltage"] = Value();
    want["/Ac/L2/Current"] = Value();
    want["/Ac/Energy/Forward"] = Value();
    check_values(d.data, want);
}

TEST_CASE("a refused data block fails the device with the exception named")
{
    // Block reads cover holes (§7.3); a meter that refuses to read one
    // fails loudly rather than publishing half a block.
    FakeMeter m;
    sdm630_info(m, 0x0070, 3.0f);
    sdm630_measurements(m);
    m.input.erase(0x0032);
    Client c(m, Transport::rtu);
    CHECK_THROWS_WITH(bring_up(c), "ILLEGAL DATA ADDRESS (exception 2) for read input registers (FC04) 0x0030+6");
}
