#include "python.hpp"

#include <cmath>
#include <cstdint>
#include <fmt/format.h>
#include <limits>
#include <stdexcept>

namespace moat::statusline {

std::string percent_f(double x, int width, int precision, bool plus)
{
    const auto w = static_cast<std::size_t>(std::max(width, 0));
    if (!std::isfinite(x)) {
        // fmt 9 pads nan/inf on the wrong side and prints NaN's sign bit;
        // Python ignores that bit.
        std::string s = std::isnan(x) ? "nan" : "inf";
        if (std::isinf(x) && x < 0)
            s.insert(0, 1, '-');
        else if (plus)
            s.insert(0, 1, '+');
        return fmt::format("{:>{}}", s, w);
    }
    // fmt's fixed precision is exactly rounded like glibc and Python.
    if (plus)
        return fmt::format("{:+{}.{}f}", x, w, precision);
    return fmt::format("{:{}.{}f}", x, w, precision);
}

std::string py_str(const moat::Value& v)
{
    return v.is_invalid() ? std::string("None") : moat::text(v);
}

namespace {

std::int64_t as_integer(const moat::Value& v)
{
    return v.is_bool() ? (v.as_bool() ? 1 : 0) : v.as_int();
}

bool integral(const moat::Value& v) noexcept
{
    return v.is_int() || v.is_bool();
}

void require_number(const moat::Value& v, const char* op)
{
    if (!v.is_number())
        throw std::invalid_argument(fmt::format("statusline: {} of a {} ({})", op, moat::kind_name(v), moat::repr(v)));
}

} // namespace

moat::Value py_add(const moat::Value& a, const moat::Value& b)
{
    require_number(a, "sum");
    require_number(b, "sum");
    if (integral(a) && integral(b)) {
        std::int64_t sum = 0;
        if (!__builtin_add_overflow(as_integer(a), as_integer(b), &sum))
            return moat::Value(sum);
    }
    return moat::Value(*a.as_number() + *b.as_number());
}

moat::Value py_neg(const moat::Value& v)
{
    require_number(v, "negation");
    if (integral(v)) {
        const std::int64_t i = as_integer(v);
        if (i != std::numeric_limits<std::int64_t>::min())
            return moat::Value(-i);
        return moat::Value(-static_cast<double>(i));
    }
    return moat::Value(-v.as_double());
}

bool py_truth(const moat::Value& v) noexcept
{
    switch (v.kind()) {
    case moat::Value::Kind::invalid: return false;
    case moat::Value::Kind::boolean: return v.as_bool();
    case moat::Value::Kind::integer: return v.as_int() != 0;
    case moat::Value::Kind::floating: return v.as_double() != 0.0; // NaN != 0: true, as in Python
    case moat::Value::Kind::string: return !v.as_string().empty();
    case moat::Value::Kind::list: return !v.as_list().empty();
    case moat::Value::Kind::dict: return !v.as_dict().empty();
    }
    return false;
}

} // namespace moat::statusline
