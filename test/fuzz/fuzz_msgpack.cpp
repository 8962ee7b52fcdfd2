// Fuzz target: the msgpack decoder. Whatever decodes re-encodes to bytes that
// decode to the same encoding again (a fixed point after one round).
#include <cstdlib>

#include "msgpack.hpp"

using namespace moat::bms::msgpack;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const Limits limits{.max_bytes = 4096, .max_depth = 16, .max_elements = 512};
    auto r = decode({data, size}, limits);
    if (r.status != DecodeStatus::ok) return 0;
    if (r.used == 0 || r.used > size) std::abort();
    Bytes once;
    encode(r.value, once, {}, true);
    auto again = decode(once, Limits{.max_bytes = 1 << 20, .max_depth = 16, .max_elements = 512});
    if (again.status != DecodeStatus::ok || again.used != once.size()) std::abort();
    Bytes twice;
    encode(again.value, twice, {}, true);
    if (twice != once) std::abort();
    (void)r.value.dump(100);
    return 0;
}
