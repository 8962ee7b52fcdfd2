// Fuzz target: the meter register decoders. Every register of a meter type
// (identification and measurement, for the phase count the input names) is
// decoded from fuzzed words; the info values then give the phase count and
// the identity as the meters plugin derives them. A decoded number lies
// within the plausibility limits of its quantity; a writable register takes
// its own decoded value back when that is within its write range.
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "fuzz_input.hpp"
#include "meter_types.hpp"
#include "registers.hpp"

using namespace moat;
using namespace moat::meters;
using moat::fuzz::FuzzInput;

namespace {

Value decode_from(FuzzInput& in, const Register& reg)
{
    std::vector<std::uint16_t> words(reg.words);
    for (auto& w : words) w = in.raw<std::uint16_t>();
    Value v = decode(reg, words);
    const Limits limits;
    if (auto range = limits.range(reg.quantity); range && v.is_number()) {
        const double d = *v.as_number();
        if (!range->contains(d)) std::abort();
    }
    if (v.is_double() && !std::isfinite(v.as_double())) std::abort();
    (void)label(reg, v);
    if (reg.writable && v.is_number() && reg.writable->contains(*v.as_number())) {
        try {
            auto back = encode(reg, v);
            if (back.size() != reg.words) std::abort();
        } catch (const std::invalid_argument&) {
            // A fraction for an integer register: refused with a message.
        }
    }
    return v;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzInput in(data, size);
    const auto types = meter_types();
    const MeterType& type = types[in.pick(types.size())];
    (void)match_model(type, in.raw<std::uint16_t>());
    Values info;
    for (const Register& reg : info_registers(type)) {
        if (in.flag()) continue;  // an optional register the meter refused
        info[reg.path] = decode_from(in, reg);
    }
    unsigned phases = 0;
    try {
        phases = phase_count(type, info);
    } catch (const std::runtime_error&) {
        phases = unsigned(in.pick(4));  // the plugin gives up on the device; go on with the data registers
    }
    if (phases > 3) std::abort();
    try {
        auto id = identity(type, info);
        if (id.ident.empty()) std::abort();
        for (char c : id.ident)
            if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') std::abort();
    } catch (const std::runtime_error&) {
    }
    for (const Register& reg : data_registers(type, phases)) decode_from(in, reg);
    return 0;
}
