// The energy ("work") record and the state of charge: energy sums from the
// controller are added with the charge loss, clamped at the ends of the model
// by the cell voltages; the SoC is read without changing anything.
#pragma once

#include <optional>
#include <string>

#include "battery_config.hpp"

namespace moat::bms::battery {

struct WorkRecord {
    double sum = 0;       ///< W·s, the estimated energy content
    double t = 0;         ///< s accounted
    double chg = 0;       ///< W·s charged (before the loss)
    double dis = 0;       ///< W·s discharged (positive)
    double over_chg = 0;  ///< W·s that did not fit the model at the top
    double over_dis = 0;  ///< W·s that did not fit at the bottom
    double cfg = 0;       ///< batt.cap.cur when the record was started
    bool operator==(const WorkRecord&) const = default;
};

/// Add `ws` W·s (positive = charged) over `seconds`; `cell_min` decides the end clamps.
void add_work(WorkRecord& w, const BatteryConfig& c, double ws, double seconds, double cell_min);
/// The end clamps alone, once per cell cycle (the SoC getter no longer does it).
void clamp_work(WorkRecord& w, const BatteryConfig& c, double cell_min);
/// SoC 0‥1: the end zones from the lowest cell, the plateau from the record.
double soc(const WorkRecord& w, const BatteryConfig& c, double cell_min);

/// Nominal pack voltage: batt.u.nom, else n × cell.u.nom; nullopt without either.
std::optional<double> nominal_pack_volts(const BatteryConfig& c);
/// /InstalledCapacity: the usable energy over the nominal pack voltage, Ah.
std::optional<double> installed_capacity_ah(const BatteryConfig& c);
/// /ConsumedAmphours: the energy missing to full over the nominal voltage, Ah (positive).
std::optional<double> consumed_ah(const WorkRecord& w, const BatteryConfig& c);

/// A record without history: 0 below the full-current range, `cap` above it,
/// else `cap/2` (`anchored` false: the energy content is a guess).
struct Seed {
    WorkRecord record;
    bool anchored = true;
};
Seed seed_work(const BatteryConfig& c, double cell_min);

/// The state file: one line of text, `moat-bms-work 1 <saved unix s> <seven numbers>`.
std::string serialize_work(const WorkRecord& w, double saved_unix_s);
struct SavedWork {
    WorkRecord record;
    double saved_unix_s = 0;
};
/// nullopt for anything but a complete, finite record of this format.
std::optional<SavedWork> parse_work(const std::string& text);

/// Write `text` to `path` atomically (a temporary beside it, fsync, rename);
/// returns an error text, empty on success.
std::string write_file_atomically(const std::string& path, const std::string& text);

} // namespace moat::bms::battery
