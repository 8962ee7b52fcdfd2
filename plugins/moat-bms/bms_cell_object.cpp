// The org.m_o_a_t.bms methods of one cell (/bms/0/<i>): readings, balancing
// and configuration from the model, and the live ones that ask the module.
#include <bit>
#include <cmath>

#include <fmt/format.h>

#include "balancing.hpp"
#include "battery_session.hpp"
#include "bms_object_support.hpp"
#include "bms_objects.hpp"
#include "calibration.hpp"
#include "config_merge.hpp"
#include "conversions.hpp"

namespace moat::bms {

using namespace battery;
using Results = std::vector<Value>;

namespace {

cell::CellRequest to_cell(cell::Command c, int i, std::vector<cell::Bytes> records = {})
{
    return cell::CellRequest{.command = c, .start = std::uint8_t(i), .count = 1, .records = std::move(records)};
}

/// The module answered nothing for its slot: "not seen" (the method's own value, not an error).
bool not_seen(const cell::CellError& e)
{
    return e.kind() == cell::CellErrorKind::no_such_cell || e.kind() == cell::CellErrorKind::short_reply;
}

double cfg_number(const LinkSession& s, const std::string& key, double fallback)
{
    const auto* v = config_at(s.config, s.app + "." + key);
    return v && v->number() ? *v->number() : fallback;
}

} // namespace

void BmsObjects::add_cell(DBusObject& o, int i)
{
    const auto k = std::size_t(i);
    o.add_method(interface, "GetBalanceVoltage", "", "d", [this, i, k](const auto&) {
        cell_model(i);
        return Results{battery_.balance_threshold[k].value_or(0.0)};
    });
    o.add_method(interface, "SetBalanceVoltage", "d", "b", [this, i, k](const Results& a) {
        Battery& m = cell_model(i);
        const double req = finite_argument(a.at(0), "voltage");
        const auto v = m.cell_volts()[k];
        if (!v) throw bms_error("NotReady", fmt::format("cell {} has no voltage reading yet", i));
        auto mb = manual_balance(req, *v);
        if (!mb) return Results{false};
        battery_.balance_forced[k] = mb->forced;
        if (mb->forced) battery_.balance_threshold[k] = mb->threshold;
        battery_.balance_wake.set();
        return Results{true};
    });
    o.add_method(interface, "GetData", "", "a{sv}", [this, i, k](const auto&) {
        Battery& m = cell_model(i);
        Value::Dict d;
        if (auto v = m.cell_volts()[k]) d["v"] = *v;
        const auto& t = m.cell_temperatures()[k];
        if (t.load_c) d["t_int"] = *t.load_c;
        if (t.cell_c) d["t_ext"] = *t.cell_c;
        const auto pwm = battery_.balance_pwm[k];
        d["balancing"] = pwm ? *pwm : (m.cell_in_balance()[k] ? 0.001 : 0.0);
        d["balance_to"] = battery_.balance_threshold[k].value_or(0.0);
        return Results{Value(std::move(d))};
    });
    o.add_method(interface, "GetConfig", "", "v", [this, i](const auto&) {
        cell_model(i);
        const LinkSession& s = session();
        const auto* c = config_at(s.config, s.app + ".cell");
        return Results{c ? config_value(*c) : Value(Value::Dict{})};
    });
    o.add_method(interface, "GetTemperatureLimit", "", "d", [this, i, k](const auto&) {
        cell_model(i);
        std::optional<double> c;
        // The settings of the last session answer while the link is down too (with the default B then).
        const double b = session_ ? cfg_number(*session_, "cell.load.b", 3950) : 3950;
        if (k < battery_.settings.size()) c = cell::raw_to_celsius(battery_.settings[k].bypass_temp_raw, b);
        return Results{c.value_or(-1000.0)};
    });
    o.add_method(interface, "SetVoltageOffset", "d", "i", [this, i, k](const Results& a) {
        cell_model(i);
        const double offset = finite_argument(a.at(0), "offset");
        if (std::abs(offset) > 1) throw bms_error("InvalidArgument", "the offset must be within ±1 V");
        battery_.cell_offset[k] = offset;
        log_.info("cell {}: voltage offset {:.4f} V (from the next reading on)", i, offset);
        return Results{0};
    });
    // Declared for the tools that introspect it, as in 2022; nothing sends it.
    o.add_signal(interface, "DataChanged", "a{sv}");
}

Task<bool> BmsObjects::ask_cell(cell::CellRequest request, CellReader read)
{
    auto seen = std::make_shared<bool>(false);
    auto op = [seen, request, read](LinkSession& s) -> Task<void> {
        try {
            auto call = s.cells.request(request);
            cell::Reply r = co_await call;
            if (read) read(s, r);
            *seen = true;
        } catch (const cell::CellError& e) {
            if (!not_seen(e)) throw;
        }
    };
    auto t = live(op, ring_bound);
    co_await t;
    co_return *seen;
}

void BmsObjects::add_cell_live(DBusObject& o, int i)
{
    const auto k = std::size_t(i);
    /// The module's settings of this session (read at its start).
    auto settings = [this, i, k]() -> cell::Settings {
        cell_model(i);
        if (k >= battery_.settings.size()) throw bms_error("NotReady", "the module settings are not read yet");
        return battery_.settings[k];
    };
    o.add_async_method(interface, "GetVoltage", "", "d", [this, i, settings](Results) -> Task<Results> {
        const cell::Settings st = settings();
        const double offset = cell_offset(i);
        auto volts = std::make_shared<std::optional<double>>();
        auto t = ask_cell(to_cell(cell::Command::read_voltage_and_status, i),
                          [volts, st, offset](const LinkSession&, const cell::Reply& r) {
                              *volts = cell_volts(st, r.records.at(0), offset);
                          });
        co_await t;
        co_return Results{volts->value_or(0.0)};
    });
    o.add_async_method(interface, "GetTemperature", "", "dd", [this, i](Results) -> Task<Results> {
        cell_model(i);
        auto temps = std::make_shared<std::pair<std::optional<double>, std::optional<double>>>();
        auto t = ask_cell(to_cell(cell::Command::read_temperature, i), [temps](const LinkSession& s, const cell::Reply& r) {
            const auto raw = cell::decode_temperatures(r.records.at(0));
            temps->first = cell::raw_to_celsius(raw.int_raw, cfg_number(s, "cell.load.b", 3950));
            temps->second = cell::raw_to_celsius(raw.ext_raw, cfg_number(s, "cell.batt.b", 3950));
        });
        co_await t;
        co_return Results{temps->first.value_or(-1000.0), temps->second.value_or(-1000.0)};
    });
    o.add_async_method(interface, "Identify", "", "b", [this, i](Results) -> Task<Results> {
        cell_model(i);
        auto t = ask_cell(to_cell(cell::Command::identify, i));
        const bool seen = co_await t;
        co_return Results{seen};
    });
    o.add_async_method(interface, "GetPIDparams", "", "uuu", [this, i](Results) -> Task<Results> {
        cell_model(i);
        auto pid = std::make_shared<std::optional<cell::PidConfig>>();
        auto t = ask_cell(to_cell(cell::Command::read_pid_config, i),
                          [pid](const LinkSession&, const cell::Reply& r) { *pid = cell::decode_pid(r.records.at(0)); });
        co_await t;
        if (!*pid) throw bms_error("Timeout", fmt::format("cell {} did not answer ReadPIDconfig", i));
        co_return Results{std::int64_t((*pid)->kp), std::int64_t((*pid)->ki), std::int64_t((*pid)->kd)};
    });
    o.add_async_method(interface, "SetPIDparams", "uuu", "b", [this, i](Results a) -> Task<Results> {
        cell_model(i);
        const cell::PidConfig pid{std::uint32_t(a.at(0).as_int()), std::uint32_t(a.at(1).as_int()),
                                  std::uint32_t(a.at(2).as_int())};
        auto t = ask_cell(to_cell(cell::Command::write_pid_config, i, {cell::encode(pid)}));
        const bool seen = co_await t;
        if (seen) log_.info("cell {}: PID parameters {} {} {} written (EEPROM)", i, pid.kp, pid.ki, pid.kd);
        co_return Results{seen};
    });
    o.name_arguments(interface, "SetPIDparams", {"kp", "ki", "kd"});
    o.add_async_method(interface, "GetPIDpwm", "", "d", [this, i](Results) -> Task<Results> {
        cell_model(i);
        auto pwm = std::make_shared<double>(-1.0);
        auto t = ask_cell(to_cell(cell::Command::read_balance_power, i),
                          [pwm](const LinkSession&, const cell::Reply& r) { *pwm = r.records.at(0).at(0) / 255.0; });
        co_await t;
        co_return Results{*pwm};
    });
    // WriteSettings ignores zero fields: only what is meant changes.
    auto write_settings = [this, i, k](cell::WriteSettings w) -> Task<bool> {
        auto t = ask_cell(to_cell(cell::Command::write_settings, i, {cell::encode(w)}));
        const bool seen = co_await t;
        if (seen && k < battery_.settings.size()) {
            if (w.calibration_bits) battery_.settings[k].voltage_calibration = w.calibration_bits;
            if (w.bypass_temp_raw) battery_.settings[k].bypass_temp_raw = w.bypass_temp_raw;
        }
        co_return seen;
    };
    o.add_async_method(interface, "SetTemperatureLimit", "d", "b", [this, settings, write_settings, i](Results a) -> Task<Results> {
        const double celsius = finite_argument(a.at(0), "temperature");
        if (celsius < 0 || celsius > 100) throw bms_error("InvalidArgument", "the limit must be within 0‥100 °C");
        settings();
        const auto raw = cell::celsius_to_raw(celsius, cfg_number(session(), "cell.load.b", 3950));
        auto t = write_settings(cell::WriteSettings{.calibration_bits = 0, .bypass_temp_raw = raw, .bypass_volt_raw = 0});
        const bool seen = co_await t;
        if (seen) log_.info("cell {}: load temperature limit {:.1f} °C written (EEPROM)", i, celsius);
        co_return Results{seen};
    });
    o.add_async_method(interface, "SetVoltage", "d", "b", [this, settings, write_settings, i, k](Results a) -> Task<Results> {
        const double ref = finite_argument(a.at(0), "voltage");
        const cell::Settings st = settings();
        const auto measured = cell_model(i).cell_volts()[k];
        const Calibrated c = calibrate_scale(st.calibration(), cell_offset(i), measured, ref, 1.0);
        if (const auto* why = std::get_if<std::string>(&c)) throw bms_error("InvalidArgument", *why);
        const float scale = float(std::get<double>(c));
        auto t = write_settings(cell::WriteSettings{.calibration_bits = cell::float_bits(scale),
                                                    .bypass_temp_raw = st.bypass_temp_raw,
                                                    .bypass_volt_raw = st.bypass_volt_raw});
        const bool seen = co_await t;
        if (seen) log_.info("cell {}: voltage calibration {:.6g} written (EEPROM)", i, scale);
        co_return Results{seen};
    });
}

} // namespace moat::bms
