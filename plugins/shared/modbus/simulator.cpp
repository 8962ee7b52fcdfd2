#include "simulator.hpp"

#include "rtu.hpp"
#include "tcp.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <fcntl.h>
#include <pty.h>
#include <stdexcept>
#include <termios.h>
#include <unistd.h>

namespace moat::meters::sim {

using modbus::Request;

namespace {

constexpr std::pair<MeterKind, std::string_view> kind_names[] = {
    {MeterKind::abb_b2x, "abb_b2x"},   {MeterKind::em24rtu, "em24rtu"},   {MeterKind::sdm120, "sdm120"},
    {MeterKind::sdm630v1, "sdm630v1"}, {MeterKind::sdm630v2, "sdm630v2"}, {MeterKind::sdm72dv2, "sdm72dv2"},
};

void put(std::map<std::uint16_t, std::uint16_t>& bank, std::uint16_t address, std::initializer_list<std::uint16_t> words)
{
    for (auto w : words) bank[address++] = w;
}
void put_f32(std::map<std::uint16_t, std::uint16_t>& bank, std::uint16_t address, double v)
{
    const auto bits = std::bit_cast<std::uint32_t>(static_cast<float>(v));
    put(bank, address, {std::uint16_t(bits >> 16), std::uint16_t(bits)});
}
void put_u32(std::map<std::uint16_t, std::uint16_t>& bank, std::uint16_t address, std::uint32_t v)
{
    put(bank, address, {std::uint16_t(v >> 16), std::uint16_t(v)});
}
void put_text(std::map<std::uint16_t, std::uint16_t>& bank, std::uint16_t address, std::string s, std::size_t words)
{
    s.resize(2 * words, '\0');
    for (std::size_t i = 0; i < words; ++i)
        bank[std::uint16_t(address + i)] =
            std::uint16_t(static_cast<unsigned char>(s[2 * i]) << 8 | static_cast<unsigned char>(s[2 * i + 1]));
}

// The words of `value` in `reg`'s encoding: the inverse of registers.hpp's decode().
std::vector<std::uint16_t> encode_raw(const Register& reg, double value)
{
    if (reg.encoding == Encoding::f32b) {
        const auto bits = std::bit_cast<std::uint32_t>(static_cast<float>(value * reg.scale));
        return {std::uint16_t(bits >> 16), std::uint16_t(bits)};
    }
    if (reg.encoding == Encoding::mapu16) {
        for (const auto& e : reg.map)
            if (double(e.value) == value) return {e.raw};
        return {0x1234};  // not in the table
    }
    const auto raw = static_cast<std::int64_t>(std::llround(value * reg.scale));
    const auto u = static_cast<std::uint64_t>(raw);
    switch (reg.encoding) {
    case Encoding::u16:
    case Encoding::s16: return {std::uint16_t(u)};
    case Encoding::u32b:
    case Encoding::s32b: return {std::uint16_t(u >> 16), std::uint16_t(u)};
    case Encoding::s32l: return {std::uint16_t(u), std::uint16_t(u >> 16)};
    case Encoding::u64b: return {std::uint16_t(u >> 48), std::uint16_t(u >> 32), std::uint16_t(u >> 16), std::uint16_t(u)};
    default: break;
    }
    throw std::logic_error("simulator: cannot encode " + reg.describe());
}

} // namespace

std::optional<MeterKind> kind_from_name(std::string_view name) noexcept
{
    for (auto& [k, n] : kind_names)
        if (n == name) return k;
    return std::nullopt;
}

std::string_view kind_name(MeterKind kind) noexcept
{
    for (auto& [k, n] : kind_names)
        if (k == kind) return n;
    return "?";
}

// ---- SimMeter ----

SimMeter::SimMeter(MeterKind kind, std::uint8_t unit, std::string serial)
    : type_(&meter_type(kind)), unit_(unit), serial_(std::move(serial))
{
    const bool eastron = kind == MeterKind::sdm630v1 || kind == MeterKind::sdm630v2 || kind == MeterKind::sdm72dv2;
    phases_ = kind == MeterKind::sdm120 ? 1 : 3;
    auto number = [&]() -> std::uint32_t {
        try {
            return static_cast<std::uint32_t>(std::stoul(serial_));
        } catch (const std::exception&) {
            throw std::invalid_argument(fmt::format("{}: the serial must be a number", type_->product_name));
        }
    };
    // Identification and configuration (§2, §4), in the registers the reader probes.
    if (eastron || kind == MeterKind::sdm120) {
        put(holding, 0xFC02, {type_->probe.models[0].code});
        put(holding, 0xFC03, {0x0203});
        put_f32(holding, 0x000A, kind == MeterKind::sdm120 ? 1.0 : 3.0);
        put_u32(holding, 0xFC00, number());
        put_f32(holding, 0x0014, double(unit));  // node address (the original's "serial", §6)
        put_f32(holding, 0x001C, kind == MeterKind::sdm630v1 ? 2.0 : 4.0);
        if (kind == MeterKind::sdm630v1) holding.erase(0xFC02);  // a v1 has no meter code
    } else if (kind == MeterKind::abb_b2x) {
        put_text(holding, 0x8960, "B23 312-100", 6);
        put_text(holding, 0x8908, "1.2.7", 8);
        put_u32(holding, 0x8900, number());
    } else if (kind == MeterKind::em24rtu) {
        put(holding, 0x000B, {type_->probe.models[0].code});
        put(holding, 0x1101, {5});  // not yet application H: the reader sets it
        put(holding, 0x0302, {0});
        put(holding, 0x0303, {0x0011});
        put(holding, 0x1102, {0});  // 3P.n
        put_text(holding, 0x1300, serial_, 7);
    }
    // A real meter answers for the whole measurement area (block reads cross
    // the holes between the registers we publish): zeros there.
    auto zeros = [](std::map<std::uint16_t, std::uint16_t>& bank, std::uint16_t from, std::uint16_t to) {
        for (std::uint32_t a = from; a <= to; ++a) bank.emplace(std::uint16_t(a), 0);
    };
    if (eastron || kind == MeterKind::sdm120) zeros(input, 0x0000, 0x017F);
    if (kind == MeterKind::em24rtu) zeros(holding, 0x0000, 0x005F);
    if (kind == MeterKind::abb_b2x) {
        zeros(holding, 0x5000, 0x54FF);
        zeros(holding, 0x5B00, 0x5B3F);
    }
    for (const auto& reg : data_registers(*type_, phases_)) paths_.insert(reg.path);
    nominal();
    update(0);
}

void SimMeter::nominal()
{
    // Nominal readings: three loaded phases, one exporting.
    const double volts[] = {230.5, 231.5, 232.5};
    const double amps[] = {1.25, 2.5, 0.75};
    const double watts[] = {280.0, 570.0, -160.0};
    double total_p = 0, total_i = 0;
    for (unsigned n = 1; n <= phases_; ++n) {
        const auto p = fmt::format("/Ac/L{}/", n);
        base_[p + "Voltage"] = volts[n - 1];
        base_[p + "Current"] = amps[n - 1];
        base_[p + "Power"] = watts[n - 1];
        base_[p + "Energy/Forward"] = 400.5 + 10 * n;
        base_[p + "Energy/Reverse"] = 20.5 + n;
        total_p += watts[n - 1];
        total_i += amps[n - 1];
    }
    base_["/Ac/Power"] = total_p;
    base_["/Ac/Current"] = total_i;
    base_["/Ac/Frequency"] = 50.0;
    base_["/Ac/Energy/Forward"] = phases_ == 1 ? base_["/Ac/L1/Energy/Forward"] : 1234.5;
    base_["/Ac/Energy/Reverse"] = phases_ == 1 ? base_["/Ac/L1/Energy/Reverse"] : 67.5;
    if (type_->kind == MeterKind::em24rtu) base_["/PhaseSequence"] = 0;
}

void SimMeter::set(const std::string& path, double value)
{
    pinned_[path] = value;
    values_[path] = value;
    write_registers();
}

void SimMeter::update(double t)
{
    values_ = base_;
    if (profile_ == Profile::sine) {
        double total_p = 0, total_i = 0;
        for (unsigned n = 1; n <= phases_; ++n) {
            const double k = 1 + 0.2 * std::sin(2 * M_PI * t / 60 + 2.1 * n);
            const auto p = fmt::format("/Ac/L{}/", n);
            values_[p + "Power"] = std::round(base_[p + "Power"] * k * 10) / 10;
            values_[p + "Current"] = std::round(base_[p + "Current"] * k * 1000) / 1000;
            total_p += values_[p + "Power"];
            total_i += values_[p + "Current"];
        }
        values_["/Ac/Power"] = total_p;
        values_["/Ac/Current"] = total_i;
    }
    for (auto& [path, v] : pinned_) values_[path] = v;
    // Only what this type publishes (the nominal set is a superset).
    std::erase_if(values_, [&](const auto& kv) { return !paths_.contains(kv.first); });
    if (profile_ == Profile::external) {
        // Totals follow the phases that were set from outside.
        double total = 0;
        for (unsigned n = 1; n <= phases_; ++n) total += values_[fmt::format("/Ac/L{}/Power", n)];
        if (!pinned_.contains("/Ac/Power")) values_["/Ac/Power"] = total;
    }
    write_registers();
}

void SimMeter::write_registers()
{
    for (const auto& reg : data_registers(*type_, phases_)) {
        auto it = values_.find(reg.path);
        if (it == values_.end()) continue;
        auto& bank = reg.access == Access::holding ? holding : input;
        auto words = encode_raw(reg, it->second);
        for (std::size_t i = 0; i < words.size(); ++i) bank[std::uint16_t(reg.address + i)] = words[i];
    }
}

bool SimMeter::affected(const Request& r) const
{
    if (!fault.address) return true;
    return *fault.address >= r.address && *fault.address < std::uint32_t(r.address) + std::max<std::uint16_t>(r.count, 1);
}

std::optional<Bytes> SimMeter::answer(const Request& req)
{
    using modbus::ExceptionCode;
    using modbus::Function;
    ++requests;
    if (fault.kind == Fault::Kind::silent && affected(req)) return std::nullopt;
    if (fault.kind == Fault::Kind::exception && affected(req))
        return modbus::encode_exception(static_cast<std::uint8_t>(req.function), fault.code);
    if (req.is_read()) {
        auto& bank = req.function == Function::read_holding_registers ? holding : input;
        std::vector<std::uint16_t> out;
        for (std::uint32_t a = req.address; a < std::uint32_t(req.address) + req.count; ++a) {
            auto it = bank.find(std::uint16_t(a));
            if (it == bank.end()) return modbus::encode_exception(req.function, ExceptionCode::illegal_data_address);
            out.push_back(it->second);
        }
        return modbus::encode_response(req, out);
    }
    if (req.function == Function::diagnostics) return modbus::encode_response(req);
    for (std::size_t i = 0; i < req.values.size(); ++i)
        if (!holding.contains(std::uint16_t(req.address + i)))
            return modbus::encode_exception(req.function, ExceptionCode::illegal_data_address);
    for (std::size_t i = 0; i < req.values.size(); ++i) holding[std::uint16_t(req.address + i)] = req.values[i];
    return modbus::encode_response(req);
}

// ---- SimBus ----

SimMeter& SimBus::add(MeterKind kind, std::uint8_t unit, std::string serial)
{
    if (find(unit)) throw std::invalid_argument(fmt::format("unit {} is taken", unit));
    meters_.push_back(std::make_unique<SimMeter>(kind, unit, std::move(serial)));
    return *meters_.back();
}

SimMeter* SimBus::find(std::uint8_t unit)
{
    for (auto& m : meters_)
        if (m->unit() == unit) return m.get();
    return nullptr;
}

void SimBus::update(double t)
{
    for (auto& m : meters_) m->update(t);
}

std::optional<Bytes> SimBus::serve_rtu(std::span<const std::uint8_t> frame)
{
    auto r = modbus::rtu_decode_request(frame);
    if (!r) return std::nullopt;
    SimMeter* m = find(r->unit);
    if (!m) return std::nullopt;
    auto pdu = m->answer(r->request);
    if (!pdu) return std::nullopt;
    auto out = modbus::rtu_frame(m->unit(), *pdu);
    if (m->fault.kind == Fault::Kind::crc && m->affected(r->request)) out.back() ^= 0x5A;
    return out;
}

std::optional<Bytes> SimBus::serve_tcp(std::span<const std::uint8_t> frame)
{
    auto r = modbus::tcp_decode_request(frame);
    if (!r) return std::nullopt;
    SimMeter* m = find(r->unit);
    if (!m) return std::nullopt;
    auto pdu = m->answer(r->request);
    if (!pdu) return std::nullopt;
    // TCP has no CRC: the "crc" fault garbles the reply's byte count instead.
    if (m->fault.kind == Fault::Kind::crc && m->affected(r->request) && pdu->size() > 2) (*pdu)[1] ^= 0x01;
    return modbus::tcp_frame(r->transaction, r->unit, *pdu);
}

// ---- TCP server ----

TcpServer::TcpServer(Loop& loop, SimBus& bus, const std::string& host, std::uint16_t port)
    : loop_(loop), bus_(bus)
{
    try {
        listener_ = TcpListener(loop, host, port, [this](TcpConnection conn) {
            auto c = std::make_unique<Client>();
            Client* raw = c.get();
            c->id = ++accepted_;
            c->conn = std::move(conn);
            clients_.push_back(std::move(c));
            TcpConnection::Handlers h;
            h.data = [this, raw](std::span<const std::uint8_t> bytes) {
                raw->rx.insert(raw->rx.end(), bytes.begin(), bytes.end());
                on_data(*raw);
            };
            h.closed = [this, id = raw->id](const std::string&) { drop_later(id); };
            raw->conn.start(std::move(h));
        });
    } catch (const IoError& e) {
        throw std::runtime_error(e.what());
    }
    port_ = listener_.port();
}

TcpServer::~TcpServer() = default;

void TcpServer::on_data(Client& c)
{
    for (;;) {
        auto size = modbus::tcp_frame_size(c.rx);
        if (!size && size.error().fault == modbus::Fault::truncated) return;
        if (!size) {
            c.conn.close();  // framing lost
            drop_later(c.id);
            return;
        }
        if (c.rx.size() < *size) return;
        Bytes frame(c.rx.begin(), c.rx.begin() + std::ptrdiff_t(*size));
        c.rx.erase(c.rx.begin(), c.rx.begin() + std::ptrdiff_t(*size));
        if (auto reply = bus_.serve_tcp(frame)) c.conn.write(*reply);
    }
}

void TcpServer::drop_later(std::uint64_t id)
{
    loop_.post([this, id, alive = std::weak_ptr<bool>(alive_)] {
        if (alive.lock()) std::erase_if(clients_, [id](const auto& c) { return c->id == id; });
    });
}

void TcpServer::drop_clients() { clients_.clear(); }

// ---- RTU server on a pty ----

RtuServer::RtuServer(Loop& loop, SimBus& bus) : loop_(loop), bus_(bus)
{
    char name[256] = {};
    termios raw{};
    ::cfmakeraw(&raw);
    raw.c_cflag |= CLOCAL | CREAD;
    if (::openpty(&master_, &slave_, name, &raw, nullptr) != 0)
        throw std::runtime_error(fmt::format("openpty: {}", std::strerror(errno)));
    slave_path_ = name;
    ::fcntl(master_, F_SETFL, ::fcntl(master_, F_GETFL) | O_NONBLOCK);
    ::fcntl(master_, F_SETFD, FD_CLOEXEC);
    ::fcntl(slave_, F_SETFD, FD_CLOEXEC);
    watch_ = FdWatch(loop_, master_, slave_path_);
    watch_.start(FdWatch::readable, [this](unsigned, const std::string& error) {
        if (error.empty()) on_readable();
    });
}

RtuServer::~RtuServer()
{
    watch_ = FdWatch();
    ::close(master_);
    ::close(slave_);
}

void RtuServer::on_readable()
{
    using namespace std::chrono_literals;
    std::uint8_t buf[512];
    const TimePoint now = std::chrono::steady_clock::now();
    // A pause of more than a few character times starts a new frame (RTU's
    // 3.5-character rule, generous for a pty).
    if (!rx_.empty() && now - last_byte_ > 20ms) rx_.clear();
    for (;;) {
        const ssize_t n = ::read(master_, buf, sizeof buf);
        if (n > 0) {
            rx_.insert(rx_.end(), buf, buf + n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    last_byte_ = now;
    while (!rx_.empty()) {
        auto size = modbus::rtu_request_size(rx_);
        if (!size && size.error().fault == modbus::Fault::truncated) return;
        if (!size || *size > modbus::max_rtu_frame_size) {
            rx_.clear();  // garbage: wait for the next frame
            return;
        }
        if (rx_.size() < *size) return;
        Bytes frame(rx_.begin(), rx_.begin() + std::ptrdiff_t(*size));
        rx_.erase(rx_.begin(), rx_.begin() + std::ptrdiff_t(*size));
        if (auto reply = bus_.serve_rtu(frame)) {
            std::size_t off = 0;
            while (off < reply->size()) {
                const ssize_t n = ::write(master_, reply->data() + off, reply->size() - off);
                if (n > 0) off += std::size_t(n);
                else if (n < 0 && errno == EINTR) continue;
                else break;  // a full pty buffer: the reader is gone, drop the rest
            }
        }
    }
}

} // namespace moat::meters::sim
