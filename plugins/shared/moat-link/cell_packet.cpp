#include "cell_packet.hpp"

#include <bit>
#include <fmt/format.h>

namespace moat::bms::cell {

namespace {

struct Sizes {
    std::uint8_t req, rep;
    const char* name;
};
constexpr Sizes sizes[14] = {
    {0, 0, "ResetPacketCounters"},
    {0, 4, "ReadVoltageAndStatus"},
    {0, 0, "Identify"},
    {0, 3, "ReadTemperature"},
    {0, 4, "ReadPacketCounters"},
    {0, 22, "ReadSettings"},
    {8, 0, "WriteSettings"},
    {0, 1, "ReadBalancePowerPWM"},
    {0, 0, "Timing"},
    {0, 4, "ReadBalanceCurrentCounter"},
    {0, 0, "ResetBalanceCurrentCounter"},
    {2, 0, "WriteBalanceLevel"},
    {12, 0, "WritePIDconfig"},
    {0, 12, "ReadPIDconfig"},
};

void need(std::span<const std::uint8_t> rec, std::size_t n, const char* what)
{
    if (rec.size() < n) throw std::length_error(fmt::format("{} record of {} bytes, need {}", what, rec.size(), n));
}

} // namespace

bool known_command(unsigned c) { return c < 14; }
std::size_t request_size(Command c) { return known_command(unsigned(c)) ? sizes[unsigned(c)].req : 0; }
std::size_t reply_size(Command c) { return known_command(unsigned(c)) ? sizes[unsigned(c)].rep : 0; }
const char* to_string(Command c) { return known_command(unsigned(c)) ? sizes[unsigned(c)].name : "unknown"; }

std::array<std::uint8_t, header_size> encode(const Header& h)
{
    return {h.start,
            std::uint8_t((h.broadcast ? 0x20 : 0) | (h.seen ? 0x10 : 0) | (h.command & 0x0F)),
            h.hops,
            std::uint8_t(((h.cells & 0x1F) << 3) | (h.sequence & 0x07))};
}

std::optional<Header> decode_header(std::span<const std::uint8_t> p)
{
    if (p.size() < header_size) return std::nullopt;
    Header h;
    h.start = p[0];
    h.broadcast = p[1] & 0x20;
    h.seen = p[1] & 0x10;
    h.command = p[1] & 0x0F;
    h.hops = p[2];
    h.cells = p[3] >> 3;
    h.sequence = p[3] & 0x07;
    return h;
}

std::uint32_t get_le(std::span<const std::uint8_t> rec, std::size_t off, std::size_t n)
{
    need(rec, off + n, "little-endian");
    std::uint32_t v = 0;
    for (std::size_t i = 0; i < n; ++i) v |= std::uint32_t(rec[off + i]) << (8 * i);
    return v;
}

void put_le(Bytes& out, std::uint32_t v, std::size_t n)
{
    for (std::size_t i = 0; i < n; ++i) out.push_back(std::uint8_t(v >> (8 * i)));
}

std::uint32_t float_bits(float f) { return std::bit_cast<std::uint32_t>(f); }
float bits_float(std::uint32_t bits) { return std::bit_cast<float>(bits); }

VoltageStatus decode_voltage(std::span<const std::uint8_t> rec)
{
    need(rec, 4, "voltage");
    return {std::uint16_t(get_le(rec, 0, 2)), std::uint16_t(get_le(rec, 2, 2))};
}

Bytes encode(const VoltageStatus& v)
{
    Bytes out;
    put_le(out, v.word, 2);
    put_le(out, v.bypass_raw, 2);
    return out;
}

Reading classify(const VoltageStatus& v, int samples)
{
    if (v.word & 0x2000) return Reading::invalid;
    if (v.raw() == 0) return Reading::none;
    if (samples < 1 || v.raw() > 1023 * samples) return Reading::invalid;
    return Reading::value;
}

Temperatures decode_temperatures(std::span<const std::uint8_t> rec)
{
    need(rec, 3, "temperature");
    return {std::uint16_t(rec[0] | (rec[1] & 0x0F) << 8), std::uint16_t((rec[1] >> 4) | rec[2] << 4)};
}

Bytes encode(const Temperatures& t)
{
    return {std::uint8_t(t.int_raw), std::uint8_t(((t.int_raw >> 8) & 0x0F) | ((t.ext_raw & 0x0F) << 4)),
            std::uint8_t(t.ext_raw >> 4)};
}

Reading classify_thermistor(std::uint16_t raw)
{
    if (raw == 0) return Reading::none;
    if (raw >= 1023) return Reading::invalid;
    return Reading::value;
}

PacketCounters decode_packet_counters(std::span<const std::uint8_t> rec)
{
    need(rec, 4, "packet counters");
    return {std::uint16_t(get_le(rec, 0, 2)), std::uint16_t(get_le(rec, 2, 2))};
}

Bytes encode(const PacketCounters& c)
{
    Bytes out;
    put_le(out, c.received, 2);
    put_le(out, c.bad, 2);
    return out;
}

float Settings::calibration() const { return bits_float(voltage_calibration); }

Settings decode_settings(std::span<const std::uint8_t> rec)
{
    need(rec, settings_size, "settings");
    Settings s;
    s.git_version = get_le(rec, 0, 4);
    s.board_version = std::uint16_t(get_le(rec, 4, 2));
    s.data_version = rec[6];
    s.mv_per_adc = rec[7];
    s.voltage_calibration = get_le(rec, 8, 4);
    s.bypass_temp_raw = std::uint16_t(get_le(rec, 12, 2));
    s.bypass_volt_raw = std::uint16_t(get_le(rec, 14, 2));
    s.b_internal = std::uint16_t(get_le(rec, 16, 2));
    s.b_external = std::uint16_t(get_le(rec, 18, 2));
    s.num_samples = rec[20];
    s.load_res_raw = rec[21];
    return s;
}

Bytes encode(const Settings& s)
{
    Bytes out;
    put_le(out, s.git_version, 4);
    put_le(out, s.board_version, 2);
    out.push_back(s.data_version);
    out.push_back(s.mv_per_adc);
    put_le(out, s.voltage_calibration, 4);
    put_le(out, s.bypass_temp_raw, 2);
    put_le(out, s.bypass_volt_raw, 2);
    put_le(out, s.b_internal, 2);
    put_le(out, s.b_external, 2);
    out.push_back(s.num_samples);
    out.push_back(s.load_res_raw);
    return out;
}

WriteSettings decode_write_settings(std::span<const std::uint8_t> rec)
{
    need(rec, 8, "write settings");
    return {get_le(rec, 0, 4), std::uint16_t(get_le(rec, 4, 2)), std::uint16_t(get_le(rec, 6, 2))};
}

Bytes encode(const WriteSettings& w)
{
    Bytes out;
    put_le(out, w.calibration_bits, 4);
    put_le(out, w.bypass_temp_raw, 2);
    put_le(out, w.bypass_volt_raw, 2);
    return out;
}

PidConfig decode_pid(std::span<const std::uint8_t> rec)
{
    need(rec, 12, "PID");
    return {get_le(rec, 0, 4), get_le(rec, 4, 4), get_le(rec, 8, 4)};
}

Bytes encode(const PidConfig& p)
{
    Bytes out;
    put_le(out, p.kp, 4);
    put_le(out, p.ki, 4);
    put_le(out, p.kd, 4);
    return out;
}

Bytes build_request(const Header& h, std::span<const Bytes> records)
{
    Header sent = h;
    sent.hops = 0;
    sent.seen = false;
    auto head = encode(sent);
    Bytes out(head.begin(), head.end());
    for (auto& r : records) out.insert(out.end(), r.begin(), r.end());
    return out;
}

const char* to_string(CellErrorKind k)
{
    switch (k) {
    case CellErrorKind::timeout: return "timeout";
    case CellErrorKind::message_lost: return "message lost";
    case CellErrorKind::no_such_cell: return "no such cell";
    case CellErrorKind::spurious_data: return "spurious data";
    case CellErrorKind::short_reply: return "short reply";
    case CellErrorKind::bad_request: return "bad request";
    }
    return "?";
}

std::variant<Reply, CellError> parse_reply(std::span<const std::uint8_t> payload)
{
    auto h = decode_header(payload);
    if (!h) return CellError(CellErrorKind::spurious_data, fmt::format("cell reply of {} bytes has no header", payload.size()));
    if (!h->seen)
        return CellError(CellErrorKind::no_such_cell,
                         fmt::format("no module at {}..{} took command {}", h->start, h->start + h->cells, h->command));
    const auto cmd = Command(h->command);
    auto data = payload.subspan(header_size);
    if (h->broadcast) {
        const std::size_t q = request_size(cmd);
        if (data.size() < q)
            return CellError(CellErrorKind::spurious_data, fmt::format("broadcast {} reply lacks its request record", to_string(cmd)));
        data = data.subspan(q);
    }
    Reply r{*h, {}};
    const std::size_t n = reply_size(cmd);
    if (n == 0) {
        if (!data.empty())
            return CellError(CellErrorKind::spurious_data, fmt::format("{} reply has {} extra bytes", to_string(cmd), data.size()));
        return r;
    }
    if (data.size() % n)
        return CellError(CellErrorKind::spurious_data,
                         fmt::format("{} reply: {} bytes are not whole {}-byte records", to_string(cmd), data.size(), n));
    for (std::size_t off = 0; off < data.size(); off += n) r.records.emplace_back(data.begin() + std::ptrdiff_t(off), data.begin() + std::ptrdiff_t(off + n));
    return r;
}

std::optional<CellError> check_count(const Reply& reply, std::size_t expected)
{
    if (reply.records.size() == expected) return std::nullopt;
    return CellError(reply.records.size() < expected ? CellErrorKind::short_reply : CellErrorKind::spurious_data,
                     fmt::format("{} reply: {} records for {} modules", to_string(Command(reply.header.command)),
                                 reply.records.size(), expected));
}

} // namespace moat::bms::cell
