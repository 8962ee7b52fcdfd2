// The host's loop-lag sampler (debug level): a blocked loop shows up in the
// maximum of the next report, and the percentiles come from the samples.
#include <catch2/catch.hpp>

#include "loop_lag.hpp"

#include <regex>
#include <thread>

using namespace moat;
using namespace std::chrono_literals;

namespace {
struct Capture : LogSink {
    std::vector<std::string> lines;
    void write(LogLevel, std::string_view line) override { lines.emplace_back(line); }
};
} // namespace

TEST_CASE("the loop-lag summary gives p50, p99 and the maximum in ms", "[loop_lag]") {
    std::vector<std::uint64_t> ns;
    for (std::uint64_t i = 1; i <= 100; ++i) ns.push_back((101 - i) * 100000);  // 0.1 .. 10 ms, unsorted
    CHECK(LoopLagSampler::summary(ns) == "p50 5.10 ms, p99 10.00 ms, max 10.00 ms (100 samples)");
    std::vector<std::uint64_t> none;
    CHECK(LoopLagSampler::summary(none) == "no samples");
}

TEST_CASE("a callback that blocks the loop for 80 ms appears as the report's maximum", "[loop_lag]") {
    Loop loop;
    auto sink = std::make_shared<Capture>();
    sink->level = LogLevel::debug;
    {
        LoopLagSampler sampler(loop, Logger("host", sink), 10ms, 300ms);
        Timer block(loop.clock(), loop.clock().now() + 45ms, [] { std::this_thread::sleep_for(80ms); });
        Timer end(loop.clock(), loop.clock().now() + 700ms, [] {});
        loop.run();
    }
    loop.run();  // the sampler's handle closes
    REQUIRE(sink->lines.size() >= 1);
    std::smatch m;
    std::regex rx(R"(^DEBUG \[host\] loop lag #1: p50 ([0-9.]+) ms, p99 ([0-9.]+) ms, max ([0-9.]+) ms \((\d+) samples\)$)");
    REQUIRE(std::regex_match(sink->lines[0], m, rx));
    CHECK(std::stod(m[3]) >= 60.0);  // the blocked 80 ms, less the part of the period already waited
    CHECK(std::stod(m[1]) < 10.0);   // most turns were on time
    CHECK(std::stoi(m[4]) >= 5);
    if (sink->lines.size() >= 2) CHECK(sink->lines[1].find("loop lag #2: ") != std::string::npos);
}
