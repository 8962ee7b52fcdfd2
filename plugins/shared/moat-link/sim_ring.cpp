#include "sim_ring.hpp"

#include <algorithm>
#include <cmath>

#include "conversions.hpp"

namespace moat::bms::sim {

using namespace cell;

std::uint16_t SimModule::voltage_word() const
{
    std::uint16_t raw = 0;
    if (voltage_raw_override) raw = *voltage_raw_override;
    else {
        // numSamples 10-bit readings of V / (divider x 2 mV), summed.
        const double reading = std::clamp(std::trunc(voltage / (true_divider * 0.002)), 0.0, 1023.0);
        raw = std::uint16_t(reading * settings.num_samples);
    }
    if (bypass || cooldown_left > 0) raw |= 0x8000;
    const auto load_raw = celsius_to_raw(load_celsius, settings.b_internal);
    if (load_raw > settings.bypass_temp_raw || load_raw > 940) raw |= 0x4000;
    return raw;
}

Temperatures SimModule::temperatures() const
{
    if (temp_raw_override) return {*temp_raw_override, *temp_raw_override};
    return {celsius_to_raw(load_celsius, settings.b_internal), celsius_to_raw(cell_celsius, settings.b_external)};
}

SimRing::SimRing(int modules, std::uint32_t seed) : rng_(seed) { resize(modules); }

void SimRing::resize(int n)
{
    modules_.resize(std::size_t(std::max(0, n)));
    for (std::size_t i = 0; i < modules_.size(); ++i) modules_[i].settings.git_version = 0x12345678;
}

std::pair<std::uint32_t, std::uint32_t> SimRing::take_errcount()
{
    std::pair<std::uint32_t, std::uint32_t> r{rx_.crc_errors(), rx_.frame_errors()};
    rx_.reset_counters();
    return r;
}

void SimRing::tick(double dt)
{
    for (auto& m : modules_) {
        const auto raw = std::uint16_t(m.voltage_word() & 0x1FFF);
        const auto load_raw = celsius_to_raw(m.load_celsius, m.settings.b_internal);
        if (m.bypass) {
            m.bypass_left -= dt;
            m.balance_counter += std::uint32_t(raw * (m.pwm / 255.0) * 1000.0 * dt);
            if (m.bypass_left <= 0) {
                m.bypass = false;
                m.pwm = 0;
                m.cooldown_left = bypass_cooldown_s;
            }
        } else if (m.cooldown_left > 0) {
            m.cooldown_left -= dt;
        } else if (raw < 1000u * m.settings.num_samples && load_raw < 940 &&
                   ((m.level_raw > 0 && raw > m.level_raw) || raw > m.settings.bypass_volt_raw)) {
            m.bypass = true;
            m.bypass_left = bypass_on_s;
            m.pwm = 255;
        }
        // About 1 K/s at full power towards 70 C; exponential cooling (tau 60 s) to the cell.
        if (m.bypass) m.load_celsius = std::min(70.0, m.load_celsius + dt * m.pwm / 255.0);
        else m.load_celsius += (m.cell_celsius - m.load_celsius) * (1 - std::exp(-dt / 60.0));
    }
}

void SimRing::apply_write(SimModule& m, Command c, std::span<const std::uint8_t> rec)
{
    switch (c) {
    case Command::write_settings: {
        auto w = decode_write_settings(rec);
        // Each field is ignored when zero; writing stops balancing.
        if (w.calibration_bits) m.settings.voltage_calibration = w.calibration_bits;
        if (w.bypass_temp_raw) m.settings.bypass_temp_raw = w.bypass_temp_raw;
        if (w.bypass_volt_raw) m.settings.bypass_volt_raw = w.bypass_volt_raw;
        m.bypass = false;
        m.pwm = 0;
        break;
    }
    case Command::write_balance_level: m.level_raw = std::uint16_t(get_le(rec, 0, 2)); break;
    case Command::write_pid_config: m.pid = decode_pid(rec); break;
    default: break;
    }
}

Bytes SimRing::read(SimModule& m, Command c)
{
    switch (c) {
    case Command::read_voltage_and_status: return encode(VoltageStatus{m.voltage_word(), m.level_raw});
    case Command::read_temperature: return encode(m.temperatures());
    case Command::read_packet_counters: return encode(PacketCounters{0, m.bad});  // `received` never counts (firmware)
    case Command::read_settings: return encode(m.settings);
    case Command::read_balance_power: return {m.bypass ? m.pwm : std::uint8_t(0)};
    case Command::read_balance_current_counter: {
        Bytes b;
        put_le(b, m.balance_counter, 4);
        return b;
    }
    case Command::read_pid_config: return encode(m.pid);
    default: return {};
    }
}

std::optional<Bytes> SimRing::pass(std::span<const std::uint8_t> request)
{
    auto h = decode_header(request);
    if (!h) return std::nullopt;  // the controller would not send it; the ring would garble it
    Bytes data(request.begin() + header_size, request.end());
    const auto cmd = Command(h->command);
    const std::size_t q = request_size(cmd);
    for (auto& m : modules_) {
        const unsigned a = h->hops;
        h->hops = std::uint8_t(h->hops + 1);
        if (a < h->start || a > unsigned(h->start) + h->cells) continue;
        if (h->command == 0) {
            // ResetPacketCounters: done after the CRC check, but `seen` stays clear (2022 firmware).
            m.bad = 0;
            continue;
        }
        if (!known_command(h->command)) continue;
        if (m.last_seq >= 0) m.bad = std::uint16_t(m.bad + ((h->sequence - m.last_seq + 8) % 8) - 1);
        m.last_seq = h->sequence;
        m.identify = cmd == Command::identify ? 10 : m.identify + 1;
        if (!faults.clear_seen) h->seen = true;
        if (q > 0) {
            // A module short of its record abandons the frame: the controller drops it.
            if (data.size() < q) return std::nullopt;
            Bytes rec(data.begin(), data.begin() + std::ptrdiff_t(q));
            if (!h->broadcast) data.erase(data.begin(), data.begin() + std::ptrdiff_t(q));
            apply_write(m, cmd, rec);
        } else {
            auto rep = read(m, cmd);
            data.insert(data.end(), rep.begin(), rep.end());
        }
    }
    auto head = encode(*h);
    Bytes out(head.begin(), head.end());
    out.insert(out.end(), data.begin(), data.end());
    return out;
}

std::vector<Bytes> SimRing::process(std::span<const std::uint8_t> request)
{
    ++counters_.packets;
    if (auto h = decode_header(request)) ++counters_.per_command[h->command & 0x0F];
    auto out = pass(request);
    if (faults.drop_nth != last_drop_nth_) {
        last_drop_nth_ = faults.drop_nth;
        until_drop_ = faults.drop_nth;
    }
    bool drop = faults.dead || !out;
    if (until_drop_ > 0 && --until_drop_ == 0) drop = true;
    if (faults.drop_probability > 0 && std::uniform_real_distribution<>(0, 1)(rng_) < faults.drop_probability) drop = true;
    if (faults.append_garbage && out) out->push_back(0x5A);
    if (faults.truncate && out && out->size() > header_size) out->pop_back();
    if (byte_ring && out && !faults.dead) {
        // The last module frames the payload; a lost packet is a corrupted
        // byte on the wire, which the controller's receiver rejects.
        auto wire = serial_packer::frame(*out);
        if (drop) wire[wire.size() / 2] ^= 0x10;
        std::vector<Bytes> frames;
        for (auto& ev : rx_.feed(wire, serial_packer::Receiver::Time{}))
            if (auto* f = std::get_if<serial_packer::Frame>(&ev)) frames.push_back(std::move(f->payload));
        if (frames.empty()) {
            ++counters_.dropped;
            return {};
        }
        out = std::move(frames.front());
        drop = false;
    }
    if (drop) {
        ++counters_.dropped;
        return {};
    }
    std::vector<Bytes> result;
    if (faults.reorder && !held_) {
        held_ = std::move(*out);
        return {};
    }
    result.push_back(*out);
    if (faults.duplicate) result.push_back(*out);
    if (held_) {
        result.push_back(std::move(*held_));
        held_.reset();
    }
    return result;
}

} // namespace moat::bms::sim
