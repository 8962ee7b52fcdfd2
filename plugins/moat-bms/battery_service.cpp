#include "battery_service.hpp"

#include <fmt/format.h>

#include "work.hpp"

namespace moat::bms {

using namespace battery;

namespace {

// Items with a printf text; the unit follows the Victron GUI's conventions.
struct Path {
    const char* path;
    const char* text;  ///< printf format; null: the default text
};
const Path model_paths[] = {
    {"/Info/BatteryLowVoltage", "%.2f V"}, {"/Info/MaxChargeVoltage", "%.2f V"},
    {"/Info/MaxChargeCurrent", "%.2f A"},  {"/Info/MaxDischargeCurrent", "%.2f A"},
    {"/Io/AllowToCharge", nullptr},        {"/Io/AllowToDischarge", nullptr},
    {"/State", nullptr},                   {"/Error", nullptr},
    {"/Dc/0/Voltage", "%.2fV"},            {"/Dc/0/Current", "%.2fA"},
    {"/Dc/0/Power", "%.0fW"},              {"/Dc/0/Temperature", "%.1f C"},
    {"/Dc/0/MidVoltage", "%.2fV"},         {"/Dc/0/MidVoltageDeviation", "%.1f%%"},
    {"/Soc", "%.1f %%"},                   {"/Soh", "%.0f %%"},
    {"/Capacity", "%.1f Ah"},              {"/InstalledCapacity", "%.1f Ah"},
    {"/ConsumedAmphours", "%.1f Ah"},      {"/System/NrOfCellsPerBattery", nullptr},
    {"/System/NrOfModulesOnline", nullptr}, {"/System/NrOfModulesOffline", nullptr},
    {"/System/NrOfModulesBlockingCharge", nullptr}, {"/System/NrOfModulesBlockingDischarge", nullptr},
    {"/System/MinCellVoltage", "%.3fV"},   {"/System/MaxCellVoltage", "%.3fV"},
    {"/System/MinVoltageCellId", nullptr}, {"/System/MaxVoltageCellId", nullptr},
    {"/System/MinCellTemperature", "%.1f C"}, {"/System/MaxCellTemperature", "%.1f C"},
    {"/System/MinTemperatureCellId", nullptr}, {"/System/MaxTemperatureCellId", nullptr},
    {"/Balancing", nullptr},               {"/History/ChargeCycles", nullptr},
    {"/History/TotalAhDrawn", nullptr},
};

// Every alarm Venus knows for a battery; the model decides the first ones,
// the rest stay invalid (no source for them).
const char* const unset_alarms[] = {"LowSoc", "CellImbalance", "HighChargeTemperature", "LowTemperature"};

Value opt(const std::optional<double>& v) { return v ? Value(*v) : Value(); }
Value opt_int(const std::optional<int>& v) { return v ? Value(std::int64_t(*v)) : Value(); }

} // namespace

BatteryService::BatteryService(Loop& loop, const std::string& app, const std::string& bus_spec,
                               const std::string& connection, const std::string& serial, Logger log)
    : service_(loop, "com.victronenergy.battery." + app, bus_spec, log), log_(std::move(log))
{
    service_.set_invalidate_on_stop(false);  // the safe state is published before the name goes
    DeviceInfo info;
    info.process_name = "moat-victron";
    info.process_version = "0.1";
    info.connection = "MoaT " + connection;
    info.device_instance = 512;
    info.product_id = product_id;
    info.product_name = "MoaT BMS";
    info.firmware_version = "0.1";
    info.connected = 0;
    service_.add_mandatory(info);
    service_.at("/ProductId").set_options(ItemOptions().text(format::hex()));
    service_.add("/Serial", serial.empty() ? Value() : Value(serial));
    for (const auto& p : model_paths) service_.add(p.path, Value(), p.text ? ItemOptions().text(p.text) : ItemOptions());
    for (std::size_t a = 0; a < alarm_count; ++a) service_.add(std::string("/Alarms/") + alarm_name(Alarm(a)), Value());
    for (const char* a : unset_alarms) service_.add(std::string("/Alarms/") + a, Value());
    publish(Outputs{}, nullptr, std::nullopt);
}

void BatteryService::set_device_instance(std::int64_t instance) { service_.set("/DeviceInstance", instance); }

void BatteryService::publish(const Outputs& o, const BatteryConfig* cfg, const std::optional<WorkRecord>& work)
{
    auto batch = service_.batch();
    auto& s = service_;
    s.set("/Info/BatteryLowVoltage", opt(o.low_voltage));
    s.set("/Info/MaxChargeVoltage", opt(o.max_charge_voltage));
    s.set("/Info/MaxChargeCurrent", o.max_charge_current);
    s.set("/Info/MaxDischargeCurrent", o.max_discharge_current);
    s.set("/Io/AllowToCharge", o.allow_charge ? 1 : 0);
    s.set("/Io/AllowToDischarge", o.allow_discharge ? 1 : 0);
    s.set("/State", o.state);
    s.set("/Error", o.error);
    s.set("/Connected", o.connected ? 1 : 0);
    for (std::size_t a = 0; a < alarm_count; ++a) s.set(std::string("/Alarms/") + alarm_name(Alarm(a)), opt_int(o.alarms[a]));
    // The safe state: every /Dc/0 value invalid (the last ones are not the battery's now).
    const bool live = !o.safe;
    s.set("/Dc/0/Voltage", live ? opt(o.dc_voltage) : Value());
    s.set("/Dc/0/Current", live ? opt(o.dc_current) : Value());
    s.set("/Dc/0/Power", live ? opt(o.dc_power) : Value());
    s.set("/Dc/0/Temperature", live ? opt(o.temperature) : Value());
    s.set("/Dc/0/MidVoltage", live && o.mid ? Value(o.mid->lower) : Value());
    s.set("/Dc/0/MidVoltageDeviation", live && o.mid ? Value(o.mid->deviation_pct) : Value());
    s.set("/Soc", o.soc ? Value(*o.soc * 100) : Value());
    s.set("/System/NrOfModulesBlockingCharge", o.blocking_charge);
    s.set("/System/NrOfModulesBlockingDischarge", o.blocking_discharge);
    s.set("/System/MinCellVoltage", o.cells ? Value(o.cells->min) : Value());
    s.set("/System/MaxCellVoltage", o.cells ? Value(o.cells->max) : Value());
    s.set("/System/MinVoltageCellId", o.cells ? Value(std::to_string(o.cells->min_index)) : Value());
    s.set("/System/MaxVoltageCellId", o.cells ? Value(std::to_string(o.cells->max_index)) : Value());
    s.set("/System/MinCellTemperature", o.temp_min ? Value(o.temp_min->celsius) : Value());
    s.set("/System/MaxCellTemperature", o.temp_max ? Value(o.temp_max->celsius) : Value());
    s.set("/System/MinTemperatureCellId", o.temp_min ? Value(std::to_string(o.temp_min->cell)) : Value());
    s.set("/System/MaxTemperatureCellId", o.temp_max ? Value(std::to_string(o.temp_max->cell)) : Value());
    s.set("/Balancing", o.balancing ? 1 : 0);
    if (cfg) {
        s.set("/Capacity", cfg->cap_ah);
        s.set("/InstalledCapacity", opt(installed_capacity_ah(*cfg)));
        s.set("/ConsumedAmphours", work ? opt(consumed_ah(*work, *cfg)) : Value());
        s.set("/System/NrOfCellsPerBattery", cfg->n);
        s.set("/System/NrOfModulesOnline", 1);
        s.set("/System/NrOfModulesOffline", 0);
    }
}

Task<void> BatteryService::start()
{
    try {
        co_await service_.start();
    } catch (const NameTakenError& e) {
        throw std::runtime_error(fmt::format("{} is already owned by {}: another battery driver on this bus? "
                                             "Stop it first",
                                             e.name(), e.owner()));
    }
    log_.info("{} registered", service_.name());
}

Task<void> BatteryService::stop()
{
    if (!service_.started()) co_return;
    co_await service_.stop();
    log_.info("{} released", service_.name());
}

} // namespace moat::bms
