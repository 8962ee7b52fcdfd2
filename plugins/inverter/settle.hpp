// Waiting for the system to settle after a write (inverter-control.md §12),
// as a pure state machine; the caller does the sleeping and the triggers.
#pragma once

namespace moat::inverter {

/// After a write the caller takes a reading of p_inv at once (the constructor),
/// awaits one trigger, then repeatedly awaits a trigger and calls add() with a
/// new reading until add() returns true. Settled: two consecutive changes
/// smaller than p_step; a larger change restarts the count. At most
/// `max_readings` readings after the first (10 in the original); add() returns
/// true on the last one in any case.
class Settle {
public:
    static constexpr int max_readings = 10;

    Settle(double first_reading, double p_step) : last_(first_reading), p_step_(p_step) {}

    /// A new reading; true when the loop should stop.
    bool add(double reading);
    bool settled() const { return calm_ >= 2; }
    int readings() const { return readings_; }
    /// Triggers awaited so far by a caller that follows the protocol above.
    int triggers() const { return 1 + readings_; }

private:
    double last_;
    double p_step_;
    int calm_ = 0;
    int readings_ = 0;
};

} // namespace moat::inverter
