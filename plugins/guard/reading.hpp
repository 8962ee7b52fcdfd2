// Where each check's value lives on this system, and reading it afresh.
// Shared by the guard plugin and the `moat-victron guard` command.
#pragma once

#include <string>

#include <moat/bus.hpp>
#include <moat/monitor.hpp>
#include <moat/task.hpp>

#include "checks.hpp"

namespace moat::guard {

inline constexpr const char* settings_service = "com.victronenergy.settings";
inline constexpr const char* system_service = "com.victronenergy.system";

/// The service class a role's services belong to ("com.victronenergy.vebus").
std::string role_class(critical::Role role);
/// Start following every service a check may need.
void follow(Monitor& monitor);
/// The service holding a role's values now: the Multi and the battery as
/// com.victronenergy.system names them (/VebusService,
/// /Dc/Battery/BatteryService, also as "class/instance"), else the first
/// such service on the bus; "" when there is none.
std::string service_for(Monitor& monitor, critical::Role role);

/// GetValue on the service itself (not the monitor's cache): not present
/// when the service or the path is missing or does not answer in `timeout`.
Task<critical::Reading> read_now(Bus& bus, std::string service, std::string path, Duration timeout);

/// The facts the checks compare with: the BMS's charge voltage when plausible.
critical::Facts facts_from(const critical::Reading& bms_charge_voltage, double planned_export);

} // namespace moat::guard
