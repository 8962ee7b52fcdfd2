// Fuzz target: the SetValue argument path of an exported item. The written
// variant (any signature) is decoded as the service decodes it, coerced to
// each item type as Python's int()/float()/str() would, checked against
// limits and the SDK's validators, and rendered by the text formatters.
// Coercion gives the item's type or refuses; coercing twice changes nothing.
#include <cmath>
#include <cstdlib>
#include <stdexcept>

#include "dbus_writer.hpp"

#include <moat/service.hpp>

#include "value_dbus.hpp"  // (library-internal: the codec under test)
#include <moat/value.hpp>

using namespace moat;
using moat::fuzz::FuzzInput;

namespace {

void check_coerced(const Value& written, ValueType type)
{
    auto c = coerce(written, type);
    if (!c) return;  // SetValue answers 1
    if (written.is_invalid()) {
        if (!c->is_invalid()) std::abort();
        return;
    }
    switch (type) {
    case ValueType::integer: if (!c->is_int()) std::abort(); break;
    case ValueType::floating: if (!c->is_double()) std::abort(); break;
    case ValueType::string: if (!c->is_string()) std::abort(); break;
    case ValueType::any: if (!(*c == written) && !(written.is_double() && std::isnan(written.as_double()))) break; break;
    }
    auto again = coerce(*c, type);
    if (!again) std::abort();
    const bool nan = c->is_double() && std::isnan(c->as_double());
    if (!nan && type != ValueType::any && !(*again == *c)) std::abort();

    static const auto in_range = validate::range(-100.0, 200.0);
    static const auto listed = validate::one_of({Value(0), Value(1), Value(2.5), Value(3)});
    (void)in_range(*c);
    (void)listed(*c);
    static const TextFormatter formatters[] = {
        format::printf("%.1F A"), format::printf("%d%%"), format::printf("%5.2f"), format::printf("%x"),
        format::printf("%c"),     format::printf("%s V"), format::printf("%r"),    format::printf("%+e"),
        format::table({{0, "Off"}, {1, "On"}}, "?"),     format::hex(),
    };
    for (const auto& f : formatters) (void)f(*c);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    FuzzInput in(data, size);
    auto variant = fuzz::fuzzed_variant(in);
    if (!variant) return 0;
    Value written;
    try {
        written = from_variant(*variant);
    } catch (const std::invalid_argument&) {
        return 0;  // SetValue answers InvalidArgs
    }
    for (auto type : {ValueType::any, ValueType::integer, ValueType::floating, ValueType::string})
        check_coerced(written, type);
    return 0;
}
