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
