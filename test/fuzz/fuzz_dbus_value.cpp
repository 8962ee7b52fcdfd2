// Fuzz target: D-Bus value decoding (from_variant, the path of every value
// read off the bus). A variant of any signature sd-bus accepts, nested
// variants included, written into a real message: the decoder gives a
// moat::Value exactly when the contents hold nothing it refuses (a struct,
// an fd, a non-string dict key, a `t` beyond int64), and otherwise throws
// std::invalid_argument; a decoded value survives to_variant/from_variant.
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "dbus_writer.hpp"

#include "value_dbus.hpp"  // (library-internal: the codec under test)

using namespace moat;
using moat::fuzz::FuzzInput;

namespace {

bool has_nan(const Value& v)
{
    if (v.is_double()) return std::isnan(v.as_double());
    if (v.is_list())
        for (auto& e : v.as_list())
            if (has_nan(e)) return true;
    if (v.is_dict())
        for (auto& [k, e] : v.as_dict())
            if (has_nan(e)) return true;
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzInput in(data, size);
    auto variant = fuzz::fuzzed_variant(in);
    if (!variant) return 0;
    const bool refused = fuzz::dbus_writer.unsupported;
    Value v;
    try {
        v = from_variant(*variant);
    } catch (const std::invalid_argument& e) {
        if (!refused) std::abort();  // a value the layer accepts was refused
        return 0;
    }
    if (refused) std::abort();  // a struct or fd slipped through
    (void)text(v);
    (void)repr(v);
    if (!has_nan(v) && from_variant(to_variant(v)) != v) std::abort();
    return 0;
}
