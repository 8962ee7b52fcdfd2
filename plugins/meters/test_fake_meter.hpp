// Test support: a meter simulated at the register level that answers real
// Modbus RTU and TCP frames, and a client-side driver that does what the
// I/O layer will do (probe, required setting, info, phases, block reads)
// through the codec, so the tests exercise the whole bus-independent path.
#pragma once

#include "block_plan.hpp"
#include "meter_types.hpp"
#include "probe.hpp"
#include "rtu.hpp"
#include "tcp.hpp"

#include <bit>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace moat::meters::test {

using Bytes = std::vector<std::uint8_t>;
using Words = std::vector<std::uint16_t>;

class FakeMeter {
public:
    std::uint8_t unit = 1;
    std::map<std::uint16_t, std::uint16_t> holding, input;
    /// Every request served, in order.
    std::vector<modbus::Request> log;
    /// Reads with this function covering this address get ILLEGAL DATA ADDRESS.
    std::set<std::pair<modbus::Function, std::uint16_t>> refused;
    /// Writes to these holding registers are acknowledged but change nothing.
    std::set<std::uint16_t> ignores_writes;
    /// Answer nothing at all (a device that is not there).
    bool silent = false;

    std::map<std::uint16_t, std::uint16_t>& bank(Access a) { return a == Access::holding ? holding : input; }

    void set(Access a, std::uint16_t address, const Words& words)
    {
        for (std::size_t i = 0; i < words.size(); ++i) bank(a)[static_cast<std::uint16_t>(address + i)] = words[i];
    }
    void fill(Access a, std::uint16_t from, std::uint16_t to_inclusive, std::uint16_t value = 0)
    {
        for (std::uint32_t i = from; i <= to_inclusive; ++i) bank(a)[static_cast<std::uint16_t>(i)] = value;
    }
    void f32(Access a, std::uint16_t address, float v)
    {
        const auto bits = std::bit_cast<std::uint32_t>(v);
        set(a, address, {static_cast<std::uint16_t>(bits >> 16), static_cast<std::uint16_t>(bits)});
    }
    void u32b(Access a, std::uint16_t address, std::uint32_t v)
    {
        set(a, address, {static_cast<std::uint16_t>(v >> 16), static_cast<std::uint16_t>(v)});
    }
    void s32b(Access a, std::uint16_t address, std::int32_t v) { u32b(a, address, static_cast<std::uint32_t>(v)); }
    void s32l(Access a, std::uint16_t address, std::int32_t v)
    {
        const auto u = static_cast<std::uint32_t>(v);
        set(a, address, {static_cast<std::uint16_t>(u), static_cast<std::uint16_t>(u >> 16)});
    }
    void u64b(Access a, std::uint16_t address, std::uint64_t v)
    {
        set(a, address, {static_cast<std::uint16_t>(v >> 48), static_cast<std::uint16_t>(v >> 32),
                         static_cast<std::uint16_t>(v >> 16), static_cast<std::uint16_t>(v)});
    }
    void text(Access a, std::uint16_t address, std::string s, std::size_t words)
    {
        s.resize(2 * words, '\0');
        for (std::size_t i = 0; i < words; ++i)
            bank(a)[static_cast<std::uint16_t>(address + i)] =
                static_cast<std::uint16_t>(static_cast<unsigned char>(s[2 * i]) << 8 | static_cast<unsigned char>(s[2 * i + 1]));
    }

    /// The reply PDU to a request.
    Bytes answer(const modbus::Request& req)
    {
        using modbus::Function;
        log.push_back(req);
        if (req.is_read()) {
            const Access a = req.function == Function::read_holding_registers ? Access::holding : Access::input;
            Words out;
            for (std::uint32_t i = req.address; i < std::uint32_t(req.address) + req.count; ++i) {
                const auto addr = static_cast<std::uint16_t>(i);
                auto it = bank(a).find(addr);
                if (it == bank(a).end() || refused.contains({req.function, addr}))
                    return modbus::encode_exception(req.function, modbus::ExceptionCode::illegal_data_address);
                out.push_back(it->second);
            }
            return modbus::encode_response(req, out);
        }
        if (req.function == Function::diagnostics) return modbus::encode_response(req);
        for (std::size_t i = 0; i < req.values.size(); ++i) {
            const auto addr = static_cast<std::uint16_t>(req.address + i);
            if (!holding.contains(addr))
                return modbus::encode_exception(req.function, modbus::ExceptionCode::illegal_data_address);
            if (!ignores_writes.contains(addr)) holding[addr] = req.values[i];
        }
        return modbus::encode_response(req);
    }

    /// The reply frame to an RTU request frame; empty when a real slave
    /// would stay silent (bad frame, other unit, broadcast).
    Bytes serve_rtu(std::span<const std::uint8_t> frame)
    {
        auto r = modbus::rtu_decode_request(frame);
        if (silent || !r || r->unit != unit) return {};
        auto pdu = answer(r->request);
        return modbus::rtu_frame(unit, pdu);
    }

    /// The reply frame to a TCP request frame.
    Bytes serve_tcp(std::span<const std::uint8_t> frame)
    {
        auto r = modbus::tcp_decode_request(frame);
        if (silent || !r) return {};
        auto pdu = answer(r->request);
        return modbus::tcp_frame(r->transaction, r->unit, pdu);
    }
};

/// The client side: one request at a time over `transport`, as the I/O layer will.
class Client {
public:
    Client(FakeMeter& meter, Transport transport) : meter_(meter), transport_(transport) {}

    Transport transport() const { return transport_; }

    /// The reply, or nullopt when none came (a timeout, for the I/O layer).
    std::optional<modbus::Response> transact(const modbus::Request& req)
    {
        if (transport_ == Transport::rtu) {
            const Bytes reply = meter_.serve_rtu(modbus::rtu_request(meter_.unit, req));
            if (reply.empty()) return std::nullopt;
            // Take bytes as the line would deliver them, until the codec says the frame is complete.
            std::size_t have = 0;
            for (std::size_t need = modbus::rtu_response_size(req, {}); have < need && have < reply.size();
                 need = modbus::rtu_response_size(req, std::span(reply).first(have)))
                have = std::min(need, reply.size());
            return modbus::rtu_decode_response(meter_.unit, req, std::span(reply).first(have)).value();
        }
        const auto transaction = ++transaction_;
        const Bytes reply = meter_.serve_tcp(modbus::tcp_request(transaction, meter_.unit, req));
        if (reply.empty()) return std::nullopt;
        const auto size = modbus::tcp_frame_size(reply).value();
        return modbus::tcp_decode_response(transaction, meter_.unit, req, std::span(reply).first(size)).value();
    }

    /// Registers of a successful read; throws ModbusException on an exception reply.
    Words read(const modbus::Request& req)
    {
        auto r = transact(req);
        if (!r) throw std::runtime_error("no reply to " + req.describe());
        if (r->is_exception()) throw modbus::ModbusException(req, *r->exception);
        return r->registers;
    }

    void write(const modbus::Request& req)
    {
        auto r = transact(req);
        if (!r) throw std::runtime_error("no reply to " + req.describe());
        if (r->is_exception()) throw modbus::ModbusException(req, *r->exception);
    }

    /// Read blocks; an exception reply to an optional block leaves its values invalid.
    Values read_blocks(const std::vector<Block>& blocks, const Limits& limits = {})
    {
        Values out;
        for (const auto& b : blocks) {
            auto r = transact(b.request());
            if (!r) throw std::runtime_error("no reply to " + b.request().describe());
            if (r->is_exception()) {
                if (!b.optional()) throw modbus::ModbusException(b.request(), *r->exception);
                for (const auto& reg : b.registers) out[reg.path] = Value();
                continue;
            }
            out.merge(decode_block(b, r->registers, limits));
        }
        return out;
    }

    std::optional<Identification> probe()
    {
        Prober p;
        while (auto req = p.next()) p.feed(transact(*req));
        return p.result();
    }

private:
    FakeMeter& meter_;
    Transport transport_;
    std::uint16_t transaction_ = 0x7FF0; // wraps during a long test, on purpose
};

/// A device brought up the way the I/O layer will.
struct Device {
    Identification id;
    Values info;
    unsigned phases = 0;
    Identity identity;
    std::vector<Block> blocks;
    Values data;
};

inline Device bring_up(Client& client, const Limits& limits = {})
{
    auto id = client.probe();
    if (!id) throw std::runtime_error("no meter recognised");
    const MeterType& type = *id->type;
    if (const auto& s = type.required_setting) {
        auto current = client.read(modbus::Request::read_holding(s->address, 1));
        if (current[0] != s->value) {
            client.write(modbus::Request::write_single(s->address, s->value));
            current = client.read(modbus::Request::read_holding(s->address, 1));
            if (current[0] != s->value) throw std::runtime_error(fmt::format("failed to set {}", s->name));
        }
    }
    Device d{*id, client.read_blocks(single_blocks(info_registers(type)), limits), 0, {}, {}, {}};
    d.phases = phase_count(type, d.info);
    d.identity = identity(type, d.info);
    d.blocks = plan_blocks(data_registers(type, d.phases), PlanOptions::for_transport(client.transport()));
    d.data = client.read_blocks(d.blocks, limits);
    return d;
}

} // namespace moat::meters::test
