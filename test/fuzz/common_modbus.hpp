// The request a Modbus fuzz input starts with: function, address, count and
// values from a few bytes (every kind the meters plugin sends).
#pragma once

#include <stdexcept>

#include "fuzz_input.hpp"
#include "modbus.hpp"

namespace moat::fuzz {

inline meters::modbus::Request request_from(FuzzInput& in)
{
    using meters::modbus::Access;
    using meters::modbus::Request;
    const auto kind = in.pick(5);
    const auto address = in.raw<std::uint16_t>();
    const auto count = static_cast<std::uint16_t>(1 + in.pick(125));
    try {
        switch (kind) {
        case 0: return Request::read(Access::holding, address, count);
        case 1: return Request::read(Access::input, address, count);
        case 2: return Request::write_single(address, in.raw<std::uint16_t>());
        case 3: {
            std::vector<std::uint16_t> values(1 + count % 123);
            for (auto& v : values) v = in.raw<std::uint16_t>();
            return Request::write_multiple(address, std::move(values));
        }
        default: return Request::echo(in.raw<std::uint16_t>());
        }
    } catch (const std::invalid_argument&) {
        return Request::read(Access::holding, 0, 1);  // a range past 0xFFFF
    }
}

} // namespace moat::fuzz
