// Fuzz target: the status line from an arbitrary snapshot. Any number of
// chargers and batteries, the Multi, the system service and a controller,
// each reading present (any value kind), missing or stale: the aggregation
// and both line formats never throw, and the line stays one line.
#include <cstdio>
#include <cstdlib>

#include "aggregate.hpp"
#include "extended.hpp"
#include "fuzz_value.hpp"
#include "line.hpp"

using namespace moat;
using namespace moat::statusline;
using moat::fuzz::FuzzInput;

namespace {

Reading reading_from(FuzzInput& in)
{
    switch (in.pick(4)) {
    case 0: return Reading::missing();
    case 1: return Reading::stale(fuzz::value_from(in, 1));
    default: return Reading(fuzz::value_from(in, 1));
    }
}

template <class Device> void fill(Device& d, FuzzInput& in)
{
    for (std::string_view path : Device::paths())
        if (Reading* r = d.at(path)) *r = reading_from(in);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzInput in(data, size);
    Snapshot s;
    for (std::size_t n = in.pick(4); n > 0; --n) {
        s.chargers.emplace_back();
        s.chargers.back().service = "com.victronenergy.solarcharger.f" + std::to_string(n);
        fill(s.chargers.back(), in);
    }
    for (std::size_t n = in.pick(3); n > 0; --n) {
        s.batteries.emplace_back();
        s.batteries.back().service = "com.victronenergy.battery.f" + std::to_string(n);
        fill(s.batteries.back(), in);
    }
    if (in.flag()) fill(s.vebus.emplace(), in);
    if (in.flag()) fill(s.system.emplace(), in);
    if (in.flag()) fill(s.controller.emplace(), in);

    try {
        Aggregate a = aggregate(s);
        if (auto* t = std::get_if<Totals>(&a)) {
            if (t->chargers != s.chargers.size()) std::abort();
            if (t->phases.size() > max_phases) std::abort();
        } else {
            (void)std::get<Incomplete>(a).message();
        }
        const std::string line = format_line(a);
        if (line != status_line(s)) std::abort();
        const std::string extended = extend_line(line, s);
        if (extended.compare(0, line.size(), line) != 0) std::abort();
        if (line.find('\n') != std::string::npos || extended.find('\n') != std::string::npos) {
            if (std::getenv("FUZZ_DEBUG")) std::fprintf(stderr, "line: [%s]\nextended: [%s]\n", line.c_str(), extended.c_str());
            std::abort();
        }
    } catch (...) {
        std::abort();  // documented: never throws
    }
    return 0;
}
