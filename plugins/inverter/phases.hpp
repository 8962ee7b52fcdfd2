// Splitting the inverter power over the phases (inverter-control.md §7.2, §9).
#pragma once

#include <optional>
#include <vector>

#include "inputs.hpp"
#include "params.hpp"

namespace moat::inverter {

/// A bound for balance(): none, one value for every index, or one per index.
class Bound {
public:
    Bound() = default;
    Bound(double v) : all_(v) {}
    Bound(std::vector<double> per_index) : per_index_(std::move(per_index)) {}
    bool none() const { return !all_ && per_index_.empty(); }
    double at(std::size_t i) const { return all_ ? *all_ : per_index_.at(i); }

private:
    std::optional<double> all_;
    std::vector<double> per_index_;
};

/// The balance algorithm of §9.2, literally (order and tie-breaking matter).
/// Removes the minority sign by spreading its magnitude over the majority
/// values, smallest first; then caps the values at `max` (or `min` when the
/// negative side is the majority), handing what a value cannot take to the
/// smaller ones. Excess that fits nowhere is dropped, so the total can shrink.
std::vector<double> balance(std::vector<double> a, const Bound& min = {}, const Bound& max = {});

/// §9.1: total inverter power `p` over the n_phase phases so that the grid
/// power per phase is as equal as possible: p/n + (cons[k] - mean(cons)),
/// balanced within +-p_per_phase.
std::vector<double> to_phases(double p, const Inputs& in, const SystemParams& sp);

/// §7.2: without a phase and with more than one phase, to_phases(); otherwise
/// everything on `phase` (1-based; nullopt or 0 = phase 1), 0 elsewhere —
/// without the per-phase cap, as in the original. Throws std::out_of_range
/// for a phase above n_phase (D6 refuses those earlier).
std::vector<double> assign_phases(double p, std::optional<int> phase, const Inputs& in, const SystemParams& sp);

} // namespace moat::inverter
