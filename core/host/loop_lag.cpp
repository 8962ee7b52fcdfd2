#include "loop_lag.hpp"

#include "uv_loop.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace moat {

namespace {

std::uint64_t ns_of(Duration d) {
    return std::uint64_t(std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(d).count()));
}

double ms(std::uint64_t ns) { return double(ns) / 1e6; }

} // namespace

LoopLagSampler::LoopLagSampler(Loop& loop, Logger log, Duration period, Duration report)
    : log_(std::move(log)), timer_(new uv_timer_t), period_ns_(ns_of(period)), report_ns_(ns_of(report)) {
    uv_timer_init(detail::uv_loop(loop), timer_);
    timer_->data = this;
    uv_unref(reinterpret_cast<uv_handle_t*>(timer_));  // a measurement keeps nothing alive
    window_start_ns_ = uv_hrtime();
    samples_.reserve(std::size_t(report_ns_ / std::max<std::uint64_t>(period_ns_, 1)) + 8);
    arm();
}

LoopLagSampler::~LoopLagSampler() {
    uv_timer_stop(timer_);
    uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void LoopLagSampler::arm() {
    // libuv counts from its cached loop time; the lateness is measured against
    // the monotonic clock, so a callback that ran long before us shows up.
    uv_update_time(timer_->loop);
    due_ns_ = uv_hrtime() + period_ns_;
    uv_timer_start(timer_, [](uv_timer_t* t) { static_cast<LoopLagSampler*>(t->data)->fired(); },
                   period_ns_ / 1000000, 0);
}

void LoopLagSampler::fired() {
    std::uint64_t now = uv_hrtime();
    samples_.push_back(now > due_ns_ ? now - due_ns_ : 0);
    if (now - window_start_ns_ >= report_ns_) {
        log_.debug("loop lag #{}: {}", ++reports_, summary(samples_));
        samples_.clear();
        window_start_ns_ = now;
    }
    arm();
}

std::string LoopLagSampler::summary(std::vector<std::uint64_t>& ns) {
    if (ns.empty()) return "no samples";
    std::sort(ns.begin(), ns.end());
    auto at = [&](double q) { return ns[std::min(ns.size() - 1, std::size_t(q * double(ns.size())))]; };
    return fmt::format("p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms ({} samples)", ms(at(0.50)), ms(at(0.99)),
                       ms(ns.back()), ns.size());
}

} // namespace moat
