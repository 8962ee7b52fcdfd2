#include "settle.hpp"

#include <cmath>

namespace moat::inverter {

bool Settle::add(double reading) {
    ++readings_;
    if (std::fabs(reading - last_) < p_step_) ++calm_;
    else calm_ = 0;
    last_ = reading;
    return settled() || readings_ >= max_readings;
}

} // namespace moat::inverter
