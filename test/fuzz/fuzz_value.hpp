// A moat::Value of any kind from a fuzz input: invalid, bool, integers of
// every size, doubles with any bit pattern (NaN, infinities, subnormals),
// strings with any bytes, and nested lists and dicts up to `depth`.
#pragma once

#include <moat/value.hpp>

#include "fuzz_input.hpp"

namespace moat::fuzz {

inline Value value_from(FuzzInput& in, int depth = 3)
{
    switch (in.pick(depth > 0 ? 10 : 8)) {
    case 0: return Value();
    case 1: return Value(in.flag());
    case 2: return Value(static_cast<std::int64_t>(static_cast<std::int8_t>(in.byte())));
    case 3: return Value(in.raw<std::int64_t>());
    case 4: return Value(static_cast<double>(in.raw<std::int16_t>()) / 10.0);
    case 5: return Value(in.raw<double>());
    case 6: return Value(in.text(16));
    case 7: return Value(static_cast<std::int64_t>(in.raw<std::int32_t>()));
    case 8: {
        Value::List list;
        for (std::size_t n = in.pick(4); n > 0; --n) list.push_back(value_from(in, depth - 1));
        return Value(std::move(list));
    }
    default: {
        Value::Dict dict;
        for (std::size_t n = in.pick(4); n > 0; --n) dict.insert_or_assign(in.text(8), value_from(in, depth - 1));
        return Value(std::move(dict));
    }
    }
}

} // namespace moat::fuzz
