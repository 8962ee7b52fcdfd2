#include "probe.hpp"

#include <algorithm>
#include <stdexcept>

namespace moat::meters {

std::vector<ProbeStep> probe_plan()
{
    std::vector<ProbeStep> steps;
    for (const auto& t : meter_types()) {
        if (!steps.empty() && steps.back().address == t.probe.address &&
            std::ranges::equal(steps.back().access, t.probe.access)) {
            steps.back().candidates.push_back(&t);
            continue;
        }
        steps.push_back(ProbeStep{t.probe.address, t.probe.access, {&t}});
    }
    return steps;
}

std::optional<Identification> identify(const ProbeStep& step, std::uint16_t code) noexcept
{
    for (const auto* t : step.candidates)
        if (auto model = match_model(*t, code)) return Identification{t, *model};
    return std::nullopt;
}

Prober::Prober() : steps_(probe_plan()) {}

std::optional<modbus::Request> Prober::next() const
{
    if (done()) return std::nullopt;
    const auto& step = steps_[step_];
    return step.request(step.access[access_]);
}

void Prober::feed(const std::optional<modbus::Response>& reply)
{
    if (done()) throw std::logic_error("Prober::feed() after the probe is done");
    const auto& step = steps_[step_];
    if (reply && reply->is_exception() && access_ + 1 < step.access.size()) {
        ++access_;
        return;
    }
    if (reply && !reply->is_exception() && reply->registers.size() == 1) {
        result_ = identify(step, reply->registers[0]);
        if (result_) return;
    }
    ++step_;
    access_ = 0;
}

} // namespace moat::meters
