// One link session of the battery: the configuration check, the start-up
// sequence (ring size against batt.n, Identify, balance levels cleared,
// ReadSettings, ReadPIDconfig), then the periodic reads that feed the model
// (pack info, cell voltages, temperatures, energy pushes), balancing, and the
// relay-off requests of trips. Returns only by failing (the link ends the
// session) or being cancelled.
#pragma once

#include <functional>

#include <moat/config.hpp>
#include <moat/log.hpp>
#include <moat/task.hpp>

#include "bms_battery.hpp"
#include "device_client.hpp"
#include "link_session.hpp"

namespace moat::bms {

/// What a session reports besides the model (the org.m_o_a_t.bms signals).
struct SessionEvents {
    std::function<void(const PackInfo&)> pack;
    std::function<void(bool changed)> cells;         ///< after each voltage read
    std::function<void(bool changed)> temperatures;  ///< after each temperature read
};

/// A configuration problem of the controller's copy: raised as DeviceConfigError
/// (the link retries in 30 s and the battery stays safe meanwhile).
Task<void> run_battery_session(LinkSession& s, BmsBattery& b, const Config& config, const SessionEvents& events, Logger log);

/// Convert one ReadVoltageAndStatus record with the module's settings (nullopt: no valid reading).
std::optional<double> cell_volts(const cell::Settings& settings, std::span<const std::uint8_t> record, double offset);

} // namespace moat::bms
