// Helpers shared by the moat-bms tests.
#pragma once

#include <cctype>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace moat::bms::test {

/// "C1 83 A1" -> bytes (spaces and '|' ignored).
inline std::vector<std::uint8_t> hex(std::string_view text)
{
    std::vector<std::uint8_t> out;
    int hi = -1;
    for (char c : text) {
        if (c == ' ' || c == '|' || c == '\n') continue;
        int v = std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::toupper(c) - 'A' + 10;
        if (v < 0 || v > 15) throw std::invalid_argument("hex: bad digit");
        if (hi < 0) hi = v;
        else { out.push_back(std::uint8_t(hi << 4 | v)); hi = -1; }
    }
    if (hi >= 0) throw std::invalid_argument("hex: odd digit count");
    return out;
}

inline std::vector<std::uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

} // namespace moat::bms::test

#include <moat/loop.hpp>
#include <moat/task.hpp>

namespace moat::bms::test {

/// Run `make()` (a Task<void> factory) in virtual time for at most `total`,
/// advancing the clock in `step`s whenever the loop has nothing else to do.
template <class Make>
void run_virtual(Loop& loop, VirtualClock& clock, Duration total, Make make, Duration step = std::chrono::milliseconds(10))
{
    bool done = false;
    auto driver = [&]() -> Task<void> {
        try {
            auto bounded = with_timeout(total, make());
            co_await bounded;
        } catch (const TimeoutError&) {
        }
        done = true;
    };
    auto advance = [&]() -> Task<void> {
        while (!done) {
            clock.advance(step);
            co_await checkpoint();
        }
    };
    auto both = [&](TaskGroup& g) -> Task<void> {
        g.spawn(driver(), "under test");
        g.spawn(advance(), "clock");
        co_return;
    };
    run_until_complete(loop, with_group(both));
}

/// A loop on a virtual clock.
struct VirtualLoop {
    VirtualLoop() { loop.set_clock(clock); }
    Loop loop;
    VirtualClock clock{loop};
    TimePoint t0 = clock.now();
    double elapsed() const { return std::chrono::duration<double>(clock.now() - t0).count(); }
    template <class Make>
    void run(Duration total, Make make) { run_virtual(loop, clock, total, make); }
};

} // namespace moat::bms::test
