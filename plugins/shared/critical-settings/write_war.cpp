#include "write_war.hpp"

namespace moat::critical {

bool WriteWar::turned_back(TimePoint t) {
    if (war_) return true;
    // The same bad value seen again (a re-read, the change signal after our
    // read-back) has no fix of ours before it: neither a turn-back nor a reset.
    if (!last_fix_) return false;
    if (t >= *last_fix_ && t - *last_fix_ <= policy_.window) ++turn_backs_;
    else turn_backs_ = 0;
    last_fix_.reset();
    if (turn_backs_ >= policy_.limit) war_ = true;
    return war_;
}

void WriteWar::calm() {
    war_ = false;
    turn_backs_ = 0;
    last_fix_.reset();
}

} // namespace moat::critical
