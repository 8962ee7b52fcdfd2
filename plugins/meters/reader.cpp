#include "reader.hpp"

#include <fmt/format.h>

namespace moat::meters {

using modbus::Request;
using modbus::Response;
using Seconds = std::chrono::duration<double>;

MeterReader::MeterReader(Link& link, std::uint8_t unit, Logger log, Limits limits, Duration probe_timeout)
    : link_(link), unit_(unit), log_(std::move(log)), limits_(limits), probe_timeout_(probe_timeout),
      latency_(Seconds(0.1))
{
}

Duration MeterReader::timeout(const MeterType& type) const
{
    return std::chrono::duration_cast<Duration>(latency_.timeout(Seconds(type.min_timeout)));
}

Task<std::optional<Response>> MeterReader::try_read(const Request& r, Duration timeout)
{
    try {
        co_return co_await link_.transact(unit_, r, timeout);
    } catch (const TimeoutError& e) {
        log_.debug("{}", e.what());
    } catch (const modbus::ProtocolError& e) {
        log_.debug("unit {}: {}", unit_, e.what());
    }
    co_return std::nullopt;
}

Task<std::vector<std::uint16_t>> MeterReader::read(const Request& r, Duration timeout)
{
    Response resp = co_await link_.transact(unit_, r, timeout);
    if (resp.is_exception()) throw modbus::ModbusException(r, *resp.exception);
    co_return std::move(resp.registers);
}

Task<std::optional<Identification>> MeterReader::probe(std::optional<MeterKind> expected)
{
    if (expected) {
        const MeterType& t = meter_type(*expected);
        for (Access a : t.probe.access) {
            const auto req = Request::read(a, t.probe.address, 1);
            auto r = co_await try_read(req, probe_timeout_);
            if (!r) co_return std::nullopt;
            if (r->is_exception()) continue;  // FC04 after FC03 (§2.1)
            if (auto model = match_model(t, r->registers.at(0))) co_return Identification{&t, *model};
            log_.warning("unit {}: configured as {}, but {} reads {} (another meter type?)", unit_, t.product_name,
                         req.describe(), r->registers.at(0));
            co_return std::nullopt;
        }
        co_return std::nullopt;
    }
    Prober p;
    while (auto req = p.next()) {
        auto r = co_await try_read(*req, probe_timeout_);
        p.feed(r);
    }
    co_return p.result();
}

Task<MeterSetup> MeterReader::init(const Identification& id)
{
    const MeterType& type = *id.type;
    const Duration t = std::max<Duration>(timeout(type), probe_timeout_);
    if (const auto& s = type.required_setting) {
        auto current = co_await read(Request::read_holding(s->address, 1), t);
        if (current.at(0) != s->value) {
            log_.info("unit {}: setting {} (register 0x{:04X} = {}, was {})", unit_, s->name, s->address, s->value,
                      current.at(0));
            co_await read(Request::write_single(s->address, s->value), t);
            current = co_await read(Request::read_holding(s->address, 1), t);
            if (current.at(0) != s->value)
                throw std::runtime_error(fmt::format("unit {}: failed to set {}", unit_, s->name));
        }
    }
    MeterSetup setup;
    setup.id = id;
    for (const Block& b : single_blocks(info_registers(type))) {
        Response r = co_await link_.transact(unit_, b.request(), t);
        if (r.is_exception()) {
            if (!b.optional()) throw modbus::ModbusException(b.request(), *r.exception);
            for (const auto& reg : b.registers) setup.info[reg.path] = Value();
            continue;
        }
        setup.info.merge(decode_block(b, r.registers, limits_));
    }
    setup.phases = phase_count(type, setup.info);
    setup.identity = identity(type, setup.info);
    setup.blocks = plan_blocks(data_registers(type, setup.phases), PlanOptions::for_transport(link_.transport()));
    last_read_.assign(setup.blocks.size(), std::nullopt);
    last_error_.assign(setup.blocks.size(), std::string());
    co_return setup;
}

void MeterReader::block_failed(std::size_t i, const Block& b, const std::string& why)
{
    // Logged once per kind of trouble; a repeat of the same error stays quiet.
    if (last_error_[i] != why) log_.warning("unit {}: {} failed: {}", unit_, b.request().describe(), why);
    last_error_[i] = why;
}

Task<Update> MeterReader::update(const MeterSetup& setup, TimePoint now)
{
    Update u;
    std::vector<Seconds> latencies;
    const Duration t = timeout(*setup.id.type);
    for (std::size_t i = 0; i < setup.blocks.size(); ++i) {
        const Block& b = setup.blocks[i];
        if (!b.due(last_read_[i], now)) continue;
        ++u.attempted;
        const auto start = std::chrono::steady_clock::now();
        std::string error;
        try {
            Response r = co_await link_.transact(unit_, b.request(), t);
            if (r.is_exception()) {
                error = modbus::ModbusException(b.request(), *r.exception).what();
            } else {
                latencies.push_back(std::chrono::steady_clock::now() - start);
                u.values.merge(decode_block(b, r.registers, limits_));
                last_read_[i] = now;
                ++u.ok;
                if (!last_error_[i].empty()) log_.info("unit {}: {} works again", unit_, b.request().describe());
                last_error_[i].clear();
                continue;
            }
        } catch (const TimeoutError& e) {
            error = e.what();
        } catch (const modbus::ProtocolError& e) {
            error = e.what();
        } catch (const LinkError& e) {
            error = e.what();
        }
        block_failed(i, b, error);
        for (const auto& reg : b.registers) u.values[reg.path] = Value();
        last_read_[i].reset();
    }
    latency_.add(latencies);
    co_return u;
}

Task<void> MeterReader::write(const Register& reg, const Value& value)
{
    auto words = encode(reg, value);
    const auto req = words.size() == 1 ? Request::write_single(reg.address, words[0])
                                       : Request::write_multiple(reg.address, std::move(words));
    Response r = co_await link_.transact(unit_, req, std::chrono::seconds(1));
    if (r.is_exception()) throw modbus::ModbusException(req, *r.exception);
}

} // namespace moat::meters
