#include "meter_types.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace moat::meters {

namespace {

using namespace std::chrono_literals;
using E = Encoding;
using Q = Quantity;

// ---- identification (§2) ----

constexpr Access holding_only[] = {Access::holding};
// §2.1: identification registers are holding registers, but some Eastron
// firmware may only answer the meter code with FC04 (the 2022 drivers read it so).
constexpr Access holding_then_input[] = {Access::holding, Access::input};

constexpr ModelCode abb_models[] = {{0x4232, "ABB_B2x"}}; // "B2" of the type designation
constexpr ModelCode em24_models[] = {
    {70, "EM24-DIN AV9"}, {71, "EM24-DIN AV2"}, {72, "EM24-DIN AV5"}, {73, "EM24-DIN AV6"}};
constexpr ModelCode sdm120_models[] = {{0x0020, "SDM120Modbus"}};
constexpr ModelCode sdm630v2_models[] = {{0x0070, "SDM630Modbusv2"}, {0x0079, "SDM630Modbusv2"}};
constexpr ModelCode sdm72_models[] = {{0x0089, "SDM72DMv2"}, {0x0087, "SDM72Dv2"}};
// High word of the float in holding 0x001C (baud-rate setting): 2.0 (9600 Bd),
// 4.0 (38400 Bd) and 0x4036 (2.84…), as the original accepts them (§6).
constexpr ModelCode sdm630v1_models[] = {
    {16512, "SDM630Modbusv1"}, {16438, "SDM630Modbusv1"}, {16384, "SDM630Modbusv1"}};

constexpr std::uint8_t unit_1[] = {1};

// ProductId 0xB017 is Victron's id for the Carlo Gavazzi EM24 (the original
// ABB driver reuses it); 0xB023 was "assigned by Victron Support" (§2).
const MeterType types[] = {
    {MeterKind::abb_b2x, "ABB_B2x_Meter", "ABB B2x-Series Power Meter", 0xB017,
     {0x8960, holding_only, abb_models}, 500ms, unit_1, std::nullopt},
    {MeterKind::em24rtu, "EM24RTU_Meter", "Carlo Gavazzi EM24RTU Energy Meter", 0xB017,
     {0x000B, holding_only, em24_models}, 500ms, unit_1, RequiredSetting{0x1101, 7, "application H"}},
    {MeterKind::sdm120, "Eastron_SDM120", "Eastron SDM120-Modbus", 0xB023,
     {0xFC02, holding_then_input, sdm120_models}, 500ms, unit_1, std::nullopt},
    {MeterKind::sdm630v2, "Eastron_SDM630v2", "Eastron SDM630-Modbus v2", 0xB023,
     {0xFC02, holding_then_input, sdm630v2_models}, 500ms, unit_1, std::nullopt},
    {MeterKind::sdm72dv2, "Eastron_SDM72Dv2", "Eastron SDM72Dv2", 0xB023,
     {0xFC02, holding_then_input, sdm72_models}, 500ms, unit_1, std::nullopt},
    {MeterKind::sdm630v1, "Eastron_SDM630v1", "Eastron SDM630-Modbus v1", 0xB023,
     {0x001C, holding_only, sdm630v1_models}, 500ms, unit_1, std::nullopt},
};

bool is_sdm630_family(MeterKind k) noexcept
{
    return k == MeterKind::sdm630v1 || k == MeterKind::sdm630v2 || k == MeterKind::sdm72dv2;
}

// ---- display texts ----

constexpr Label eastron_phase_labels[] = {{0, "undefined"}, {1, "1P"}, {2, "3P.1"}, {3, "3P.n"}};
constexpr Label sdm120_phase_labels[] = {{0, "1P"}, {1, "1P"}, {2, "3P.1"}, {3, "3P.n"}};
constexpr Label em24_phase_labels[] = {{0, "3P.n"}, {1, "3P.1"}, {2, "2P"}, {3, "1P"}, {4, "3P"}};
constexpr Label em24_hardware_labels[] = {
    {0, "EM24DINAV93XO2PFA"},  {2, "EM24DINAV93XISPFA"},  {3, "EM24DINAV93XXXPFA"},  {4, "EM24DINAV23XO2PFA"},
    {5, "EM24DINAV23XISPFA"},  {6, "EM24DINAV23XXXPFA"},  {7, "EM24DINAV53xO2PFA"},  {9, "EM24DINAV53xISPFA"},
    {10, "EM24DINAV53xXXPFA"}, {66, "EM24DINAV93XISX"},   {73, "EM24DINAV53DISX"},   {76, "EM24DINAV63xO2X"},
    {77, "EM24DINAV63xR2X"},   {78, "EM24DINAV63xISX"},   {79, "EM24DINAV63xXXX"},
};
// EM24 phase sequence: 0 in order, 0xFFFF reversed.
constexpr MapEntry em24_phase_sequence[] = {{0x0000, 0}, {0xFFFF, 1}};

// ---- measurement maps (§4) ----

// One table row. A path containing '#' is per phase: '#' becomes the phase
// number and the address advances by `stride` per phase.
struct DataDef {
    std::string_view path;
    std::uint16_t address;
    Encoding encoding;
    double scale;
    Quantity quantity;
    std::uint16_t stride = 0;
};

// §4.1, measurements are input registers (FC04).
constexpr DataDef sdm630_data[] = {
    {"/Ac/Power", 0x0034, E::f32b, 1, Q::power},
    {"/Ac/Current", 0x0030, E::f32b, 1, Q::current},
    {"/Ac/Frequency", 0x0046, E::f32b, 1, Q::frequency},
    {"/Ac/Energy/Forward", 0x0048, E::f32b, 1, Q::energy},
    {"/Ac/Energy/Reverse", 0x004A, E::f32b, 1, Q::energy},
    {"/Ac/L#/Voltage", 0x0000, E::f32b, 1, Q::voltage, 2},
    {"/Ac/L#/Current", 0x0006, E::f32b, 1, Q::current, 2},
    {"/Ac/L#/Power", 0x000C, E::f32b, 1, Q::power, 2},
    {"/Ac/L#/Energy/Forward", 0x015A, E::f32b, 1, Q::energy, 2},
    {"/Ac/L#/Energy/Reverse", 0x0160, E::f32b, 1, Q::energy, 2},
};

// §4.2: totals and phase 1 share registers on this single-phase meter.
constexpr DataDef sdm120_data[] = {
    {"/Ac/Power", 0x000C, E::f32b, 1, Q::power},
    {"/Ac/Current", 0x0006, E::f32b, 1, Q::current},
    {"/Ac/Frequency", 0x0046, E::f32b, 1, Q::frequency},
    {"/Ac/Energy/Forward", 0x0048, E::f32b, 1, Q::energy},
    {"/Ac/Energy/Reverse", 0x004A, E::f32b, 1, Q::energy},
    {"/Ac/L#/Voltage", 0x0000, E::f32b, 1, Q::voltage, 2},
    {"/Ac/L#/Current", 0x0006, E::f32b, 1, Q::current, 2},
    {"/Ac/L#/Power", 0x000C, E::f32b, 1, Q::power, 2},
    {"/Ac/L#/Energy/Forward", 0x0048, E::f32b, 1, Q::energy, 2},
    {"/Ac/L#/Energy/Reverse", 0x004A, E::f32b, 1, Q::energy, 2},
};

// §4.3, holding registers.
constexpr DataDef abb_data[] = {
    {"/Ac/Power", 0x5B14, E::s32b, 100, Q::power},
    {"/Ac/Frequency", 0x5B2C, E::u16, 100, Q::frequency},
    {"/Ac/Energy/Forward", 0x5000, E::u64b, 100, Q::energy},
    {"/Ac/Energy/Reverse", 0x5004, E::u64b, 100, Q::energy},
    {"/Ac/L#/Voltage", 0x5B00, E::u32b, 10, Q::voltage, 2},
    {"/Ac/L#/Current", 0x5B0C, E::u32b, 100, Q::current, 2},
    {"/Ac/L#/Power", 0x5B16, E::s32b, 100, Q::power, 2},
    {"/Ac/L#/Energy/Forward", 0x5460, E::u64b, 100, Q::energy, 4},
    {"/Ac/L#/Energy/Reverse", 0x546C, E::u64b, 100, Q::energy, 4},
};
// ABB's "not available" for a 64-bit counter (Victron's abb.py treats it so).
constexpr std::uint64_t abb_u64_invalid = 0xFFFF'FFFF'FFFF'FFFF;

// §4.4, holding registers.
constexpr DataDef em24_data[] = {
    {"/Ac/Power", 0x0028, E::s32l, 10, Q::power},
    {"/Ac/Frequency", 0x0037, E::u16, 10, Q::frequency},
    {"/Ac/Energy/Forward", 0x003E, E::s32l, 10, Q::energy},
    {"/Ac/Energy/Reverse", 0x005C, E::s32l, 10, Q::energy},
    {"/Ac/L#/Voltage", 0x0000, E::s32l, 10, Q::voltage, 2},
    {"/Ac/L#/Current", 0x000C, E::s32l, 1000, Q::current, 2},
    {"/Ac/L#/Power", 0x0012, E::s32l, 10, Q::power, 2},
    {"/Ac/L#/Energy/Forward", 0x0046, E::s32l, 10, Q::energy, 2},
};

Register make(std::string path, Access access, std::uint16_t address, Encoding encoding, std::uint16_t words = 0)
{
    Register r;
    r.max_age = max_age_for(path);
    r.path = std::move(path);
    r.access = access;
    r.address = address;
    r.encoding = encoding;
    r.words = words ? words : encoding_words(encoding);
    return r;
}

void expand(std::vector<Register>& out, std::span<const DataDef> defs, Access access, unsigned phases)
{
    for (const auto& d : defs) {
        const auto hash = d.path.find('#');
        const unsigned copies = hash == std::string_view::npos ? 1 : phases;
        for (unsigned n = 1; n <= copies; ++n) {
            std::string path(d.path);
            if (hash != std::string_view::npos) path.replace(hash, 1, std::to_string(n));
            auto r = make(std::move(path), access, static_cast<std::uint16_t>(d.address + d.stride * (n - 1)), d.encoding);
            r.scale = d.scale;
            r.quantity = d.quantity;
            out.push_back(std::move(r));
        }
    }
}

Register phase_config(Access access, std::uint16_t address, Encoding encoding, std::span<const Label> labels, double max)
{
    auto r = make("/PhaseConfig", access, address, encoding);
    r.labels = labels;
    r.writable = Range{0, max};
    r.reinit_on_write = true;
    return r;
}

Register numeric_serial(std::string key, std::uint16_t address)
{
    auto r = make(std::move(key), Access::holding, address, E::u32b);
    r.as_string = true;
    return r;
}

// A value from the info map, or invalid.
const Value& info_value(const Values& info, std::string_view key)
{
    static const Value none;
    auto it = info.find(std::string(key));
    return it == info.end() ? none : it->second;
}

std::string sanitize_ident(std::string s)
{
    // Bus name elements allow [A-Za-z0-9_-], object path elements [A-Za-z0-9_].
    for (char& c : s)
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) c = '_';
    return s;
}

} // namespace

std::span<const MeterType> meter_types() noexcept { return types; }

const MeterType& meter_type(MeterKind kind) noexcept
{
    return *std::find_if(std::begin(types), std::end(types), [&](const MeterType& t) { return t.kind == kind; });
}

std::optional<std::string_view> match_model(const MeterType& type, std::uint16_t code) noexcept
{
    for (const auto& m : type.probe.models)
        if (m.code == code) return m.model;
    return std::nullopt;
}

std::vector<Register> info_registers(const MeterType& type)
{
    std::vector<Register> regs;
    switch (type.kind) {
    case MeterKind::sdm630v1:
    case MeterKind::sdm630v2:
    case MeterKind::sdm72dv2: {
        // §2.1: identification and configuration with FC03. /HardwareVersion
        // is the meter code (§6). A v1 was recognised by another register,
        // so nothing says it has the 0xFCxx block: there it is optional.
        const bool v1 = type.kind == MeterKind::sdm630v1;
        auto hw = make("/HardwareVersion", Access::holding, 0xFC02, E::u16);
        auto fw = make("/FirmwareVersion", Access::holding, 0xFC03, E::u16);
        hw.optional = fw.optional = v1;
        regs.push_back(std::move(hw));
        regs.push_back(std::move(fw));
        regs.push_back(phase_config(Access::holding, 0x000A, E::f32b, eastron_phase_labels, 3));
        // §6: the real serial number, optional for the same reason; without
        // it the original's pseudo-serial stands in (see identity()).
        auto serial = numeric_serial("/Serial", 0xFC00);
        serial.optional = true;
        regs.push_back(std::move(serial));
        regs.push_back(numeric_serial(std::string(legacy_serial_key), 0x0014));
        break;
    }
    case MeterKind::sdm120: {
        regs.push_back(make("/HardwareVersion", Access::holding, 0xFC02, E::u16));
        regs.push_back(make("/FirmwareVersion", Access::holding, 0xFC03, E::u16));
        // Unverified whether the SDM120 has it (§4.2); nothing depends on it.
        auto pc = phase_config(Access::holding, 0x000A, E::f32b, sdm120_phase_labels, 3);
        pc.optional = true;
        regs.push_back(std::move(pc));
        regs.push_back(numeric_serial("/Serial", 0xFC00));
        break;
    }
    case MeterKind::abb_b2x:
        regs.push_back(make("/HardwareVersion", Access::holding, 0x8960, E::text, 6));
        regs.push_back(make("/FirmwareVersion", Access::holding, 0x8908, E::text, 8));
        regs.push_back(numeric_serial("/Serial", 0x8900));
        break;
    case MeterKind::em24rtu: {
        auto hw = make("/HardwareVersion", Access::holding, 0x0302, E::u16);
        hw.labels = em24_hardware_labels;
        hw.unknown_label = "unknown";
        // §10: writable over the whole table (the original stopped at 78).
        hw.writable = Range{0, 79};
        hw.reinit_on_write = true;
        regs.push_back(std::move(hw));
        regs.push_back(make("/FirmwareVersion", Access::holding, 0x0303, E::u16));
        regs.push_back(phase_config(Access::holding, 0x1102, E::u16, em24_phase_labels, 4));
        regs.push_back(make("/Serial", Access::holding, 0x1300, E::text, 7));
        break;
    }
    }
    return regs;
}

unsigned phase_count(const MeterType& type, const Values& info)
{
    const Value& pc = info_value(info, "/PhaseConfig");
    auto config_index = [&](int max) -> unsigned {
        if (pc.is_invalid())
            throw std::runtime_error(fmt::format("{}: /PhaseConfig could not be read, a configuration of 0..{} is needed",
                                                 type.product_name, max));
        const auto n = pc.is_bool() ? std::nullopt : pc.as_number();
        if (!n || !(*n >= 0 && *n <= max) || *n != std::trunc(*n))
            throw std::runtime_error(fmt::format("{}: /PhaseConfig {:r} is not a configuration of 0..{}",
                                                 type.product_name, pc, max));
        return static_cast<unsigned>(*n);
    };
    switch (type.kind) {
    case MeterKind::sdm630v1:
    case MeterKind::sdm630v2:
    case MeterKind::sdm72dv2: {
        // System type 1 = 1P2W, 2 = 3P3W, 3 = 3P4W; 0 (undefined) reads no phases.
        static constexpr unsigned by_config[] = {0, 1, 3, 3};
        return by_config[config_index(3)];
    }
    case MeterKind::sdm120:
        return 1; // single-phase, whatever its system-type register says (§4.2)
    case MeterKind::abb_b2x: {
        // §10: the B21 is single-phase; B23 and B24 have three.
        const Value& hw = info_value(info, "/HardwareVersion");
        return hw.is_string() && hw.as_string().starts_with("B21") ? 1 : 3;
    }
    case MeterKind::em24rtu: {
        static constexpr unsigned by_config[] = {3, 3, 2, 1, 3};
        return by_config[config_index(4)];
    }
    }
    return 0;
}

std::vector<Register> data_registers(const MeterType& type, unsigned phases)
{
    if (phases > 3) throw std::invalid_argument(fmt::format("{}: {} phases", type.product_name, phases));
    std::vector<Register> regs;
    switch (type.kind) {
    case MeterKind::sdm630v1:
    case MeterKind::sdm630v2:
    case MeterKind::sdm72dv2: expand(regs, sdm630_data, Access::input, phases); break;
    case MeterKind::sdm120: expand(regs, sdm120_data, Access::input, phases); break;
    case MeterKind::abb_b2x:
        expand(regs, abb_data, Access::holding, phases);
        for (auto& r : regs)
            if (r.encoding == E::u64b) r.invalid_raw = abb_u64_invalid;
        break;
    case MeterKind::em24rtu:
        expand(regs, em24_data, Access::holding, phases);
        if (phases == 3) {
            auto seq = make("/PhaseSequence", Access::holding, 0x0036, E::mapu16);
            seq.map = em24_phase_sequence;
            regs.push_back(std::move(seq));
        }
        break;
    }
    return regs;
}

Identity identity(const MeterType& type, const Values& info)
{
    auto text_of = [&](std::string_view key) -> std::optional<std::string> {
        const Value& v = info_value(info, key);
        if (v.is_string() && !v.as_string().empty()) return v.as_string();
        return std::nullopt;
    };
    auto serial = text_of("/Serial");
    std::optional<std::string> legacy;
    if (is_sdm630_family(type.kind)) {
        legacy = text_of(legacy_serial_key);
        if (!serial) serial = legacy;
    }
    if (!serial) throw std::runtime_error(fmt::format("{}: no serial number could be read", type.product_name));

    Identity id{*serial, sanitize_ident("cg_" + *serial), std::nullopt};
    if (legacy) {
        auto old = sanitize_ident("cg_" + *legacy);
        if (old != id.ident) id.legacy_ident = std::move(old);
    }
    return id;
}

} // namespace moat::meters
