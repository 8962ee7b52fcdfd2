// Info registers, phase rules, identity quirks (§6), writable registers,
// display texts, and the latency filter.
#include "latency.hpp"
#include "meter_types.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace moat::meters;
using moat::Value;

namespace {

const Register& find(const std::vector<Register>& regs, std::string_view path)
{
    auto it = std::find_if(regs.begin(), regs.end(), [&](const Register& r) { return r.path == path; });
    if (it == regs.end()) throw std::out_of_range(std::string(path));
    return *it;
}

} // namespace

TEST_CASE("Eastron SDM630 family info registers: FC03, meter code, serial, legacy serial")
{
    for (auto k : {MeterKind::sdm630v1, MeterKind::sdm630v2, MeterKind::sdm72dv2}) {
        const auto regs = info_registers(meter_type(k));
        CHECK(regs.size() == 5);
        for (const auto& r : regs) CHECK(r.access == Access::holding);
        CHECK(find(regs, "/HardwareVersion").address == 0xFC02);
        CHECK(find(regs, "/FirmwareVersion").address == 0xFC03);
        const auto& pc = find(regs, "/PhaseConfig");
        CHECK(pc.address == 0x000A);
        CHECK(pc.encoding == Encoding::f32b);
        CHECK(pc.writable == Range{0, 3});
        CHECK(pc.reinit_on_write);
        CHECK(label(pc, 0.0) == "undefined");
        CHECK(label(pc, 1.0) == "1P");
        CHECK(label(pc, 2.0) == "3P.1");
        CHECK(label(pc, 3.0) == "3P.n");
        CHECK(encode(pc, 2) == std::vector<std::uint16_t>{0x4000, 0x0000});
        const auto& serial = find(regs, "/Serial");
        CHECK(serial.address == 0xFC00);
        CHECK(serial.as_string);
        CHECK(serial.optional);
        const auto& legacy = find(regs, std::string(legacy_serial_key));
        CHECK(legacy.address == 0x0014);
        CHECK_FALSE(legacy.published());
        CHECK(find(regs, "/HardwareVersion").optional == (k == MeterKind::sdm630v1));
    }
}

TEST_CASE("SDM120 info: real serial, optional system type with its own texts")
{
    const auto regs = info_registers(meter_type(MeterKind::sdm120));
    CHECK(regs.size() == 4);
    CHECK_FALSE(find(regs, "/Serial").optional);
    const auto& pc = find(regs, "/PhaseConfig");
    CHECK(pc.optional);
    CHECK(label(pc, 0.0) == "1P");
    CHECK(label(pc, 1.0) == "1P");
    CHECK(label(pc, 3.0) == "3P.n");
}

TEST_CASE("EM24 info: hardware table, phase configurations, writable ranges")
{
    const auto regs = info_registers(meter_type(MeterKind::em24rtu));
    const auto& hw = find(regs, "/HardwareVersion");
    CHECK(hw.address == 0x0302);
    CHECK(label(hw, 0) == "EM24DINAV93XO2PFA");
    CHECK(label(hw, 1) == "unknown");
    CHECK(label(hw, 7) == "EM24DINAV53xO2PFA");
    CHECK(label(hw, 10) == "EM24DINAV53xXXPFA");
    CHECK(label(hw, 66) == "EM24DINAV93XISX");
    CHECK(label(hw, 73) == "EM24DINAV53DISX");
    CHECK(label(hw, 79) == "EM24DINAV63xXXX");
    CHECK(label(hw, 80) == "unknown");
    // §10: the whole table, 0..79, is accepted.
    CHECK(encode(hw, 79) == std::vector<std::uint16_t>{79});
    CHECK_THROWS_AS(encode(hw, 80), std::invalid_argument);
    CHECK(hw.reinit_on_write);

    const auto& pc = find(regs, "/PhaseConfig");
    CHECK(pc.address == 0x1102);
    CHECK(pc.encoding == Encoding::u16);
    CHECK(label(pc, 0) == "3P.n");
    CHECK(label(pc, 1) == "3P.1");
    CHECK(label(pc, 2) == "2P");
    CHECK(label(pc, 3) == "1P");
    CHECK(label(pc, 4) == "3P");
    CHECK(encode(pc, 4) == std::vector<std::uint16_t>{4});
    CHECK_THROWS_AS(encode(pc, 5), std::invalid_argument);

    const auto& serial = find(regs, "/Serial");
    CHECK(serial.encoding == Encoding::text);
    CHECK(serial.words == 7);
    CHECK_FALSE(find(regs, "/FirmwareVersion").writable);
}

TEST_CASE("ABB info: type designation and firmware as text, numeric serial")
{
    const auto regs = info_registers(meter_type(MeterKind::abb_b2x));
    CHECK(find(regs, "/HardwareVersion").words == 6);
    CHECK(find(regs, "/FirmwareVersion").address == 0x8908);
    CHECK(find(regs, "/FirmwareVersion").words == 8);
    CHECK(find(regs, "/Serial").address == 0x8900);
    CHECK(find(regs, "/Serial").as_string);
}

TEST_CASE("data registers: access, scale, quantity and max_age")
{
    using namespace std::chrono_literals;
    const auto sdm = data_registers(meter_type(MeterKind::sdm630v2), 3);
    CHECK(sdm.size() == 5 + 5 * 3);
    for (const auto& r : sdm) {
        INFO(r.describe());
        CHECK(r.access == Access::input);
        CHECK(r.encoding == Encoding::f32b);
        CHECK(r.quantity != Quantity::none);
    }
    CHECK(find(sdm, "/Ac/L3/Energy/Reverse").address == 0x0164);
    CHECK(find(sdm, "/Ac/Power").max_age == 1s);
    CHECK(find(sdm, "/Ac/L2/Power").max_age == 1s);
    CHECK(find(sdm, "/Ac/L2/Voltage").max_age == 4s);

    const auto abb = data_registers(meter_type(MeterKind::abb_b2x), 3);
    CHECK(find(abb, "/Ac/L3/Energy/Forward").address == 0x5468);
    CHECK(find(abb, "/Ac/L3/Energy/Reverse").address == 0x5474);
    CHECK(find(abb, "/Ac/L2/Voltage").scale == 10);
    CHECK(find(abb, "/Ac/L2/Current").scale == 100);
    CHECK(find(abb, "/Ac/Energy/Reverse").invalid_raw == 0xFFFF'FFFF'FFFF'FFFFu);
    CHECK_FALSE(find(abb, "/Ac/Power").invalid_raw);

    const auto em24 = data_registers(meter_type(MeterKind::em24rtu), 3);
    CHECK(find(em24, "/Ac/L2/Current").scale == 1000);
    CHECK(find(em24, "/PhaseSequence").encoding == Encoding::mapu16);
    CHECK_THROWS_AS(find(em24, "/Ac/L1/Energy/Reverse"), std::out_of_range); // the EM24 has no per-phase export
    CHECK(data_registers(meter_type(MeterKind::em24rtu), 2).size() == 4 + 4 * 2);

    CHECK_THROWS_AS(data_registers(meter_type(MeterKind::em24rtu), 4), std::invalid_argument);
}

TEST_CASE("phase_count rules per type")
{
    const auto& v2 = meter_type(MeterKind::sdm630v2);
    CHECK(phase_count(v2, {{"/PhaseConfig", 0.0}}) == 0);
    CHECK(phase_count(v2, {{"/PhaseConfig", 1.0}}) == 1);
    CHECK(phase_count(v2, {{"/PhaseConfig", 2.0}}) == 3);
    CHECK(phase_count(v2, {{"/PhaseConfig", 3.0}}) == 3);
    CHECK_THROWS_WITH(phase_count(v2, {}), "Eastron SDM630-Modbus v2: /PhaseConfig could not be read, a configuration of 0..3 is needed");
    CHECK_THROWS_AS(phase_count(v2, {{"/PhaseConfig", 4.0}}), std::runtime_error);
    CHECK_THROWS_AS(phase_count(v2, {{"/PhaseConfig", -1.0}}), std::runtime_error);
    CHECK_THROWS_AS(phase_count(v2, {{"/PhaseConfig", 1e30}}), std::runtime_error);
    CHECK_THROWS_AS(phase_count(v2, {{"/PhaseConfig", "3"}}), std::runtime_error);

    CHECK(phase_count(meter_type(MeterKind::sdm120), {}) == 1);
    CHECK(phase_count(meter_type(MeterKind::sdm120), {{"/PhaseConfig", 3.0}}) == 1);

    const auto& abb = meter_type(MeterKind::abb_b2x);
    CHECK(phase_count(abb, {{"/HardwareVersion", "B21 312-100"}}) == 1);
    CHECK(phase_count(abb, {{"/HardwareVersion", "B23 312-100"}}) == 3);
    CHECK(phase_count(abb, {{"/HardwareVersion", "B24 352-100"}}) == 3);
    CHECK(phase_count(abb, {{"/HardwareVersion", Value()}}) == 3);

    const auto& em24 = meter_type(MeterKind::em24rtu);
    CHECK(phase_count(em24, {{"/PhaseConfig", 2}}) == 2);
    CHECK(phase_count(em24, {{"/PhaseConfig", 3}}) == 1);
    CHECK_THROWS_AS(phase_count(em24, {{"/PhaseConfig", 5}}), std::runtime_error);
}

TEST_CASE("identity: cg_ prefix, legacy ident for the SDM630 family (§6)")
{
    const auto& v2 = meter_type(MeterKind::sdm630v2);
    auto id = identity(v2, {{"/Serial", "20160001"}, {"legacy-serial", "1065353216"}});
    CHECK(id.serial == "20160001");
    CHECK(id.ident == "cg_20160001");
    CHECK(id.legacy_ident == "cg_1065353216");

    // The real serial unreadable: the legacy one is the identity, nothing to migrate.
    id = identity(v2, {{"/Serial", Value()}, {"legacy-serial", "1065353216"}});
    CHECK(id.serial == "1065353216");
    CHECK(id.ident == "cg_1065353216");
    CHECK_FALSE(id.legacy_ident);

    CHECK_THROWS_WITH(identity(v2, {}), "Eastron SDM630-Modbus v2: no serial number could be read");
    CHECK_THROWS_AS(identity(meter_type(MeterKind::sdm120), {{"legacy-serial", "1"}}), std::runtime_error);
    CHECK_THROWS_AS(identity(meter_type(MeterKind::em24rtu), {{"/Serial", ""}}), std::runtime_error);

    // Characters a bus name or object path cannot hold become '_'; /Serial keeps them.
    id = identity(meter_type(MeterKind::em24rtu), {{"/Serial", "AB-12 3.x"}});
    CHECK(id.serial == "AB-12 3.x");
    CHECK(id.ident == "cg_AB_12_3_x");
    CHECK_FALSE(id.legacy_ident);
}

TEST_CASE("latency filter: quick up, slow down, timeout at least min_timeout")
{
    using S = LatencyFilter::Seconds;
    LatencyFilter f(S(0.5));
    CHECK(f.estimate() == S(0.5));
    // The window still holds the initial 0.5, so its maximum has not fallen yet.
    const S fast[] = {S(0.02), S(0.05)};
    CHECK(f.add(fast).count() == Approx(0.5));
    for (int i = 0; i < 7; ++i) f.add(fast);
    // Now every slot holds 0.05: each update moves a quarter of the way down.
    const double before = f.estimate().count();
    CHECK(f.add(fast).count() == Approx(0.75 * before + 0.25 * 0.05));
    // A slow reply moves three quarters of the way up at once.
    const double low = f.estimate().count();
    const S slow[] = {S(0.01), S(1.0)};
    CHECK(f.add(slow).count() == Approx(0.25 * low + 0.75 * 1.0));
    // An update that read nothing changes nothing.
    const double now = f.estimate().count();
    CHECK(f.add({}).count() == Approx(now));
    CHECK(f.timeout(S(10)) == S(10));
    CHECK(f.timeout(S(0.1)).count() == Approx(4 * now));
}
