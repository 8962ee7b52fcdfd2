// SHA-256 (FIPS 180-4), to identify the exact version of a file we patch.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace moat::guard {

/// The digest of `data` as 64 lower-case hex digits (what `sha256sum` prints).
std::string sha256_hex(std::string_view data);

} // namespace moat::guard
