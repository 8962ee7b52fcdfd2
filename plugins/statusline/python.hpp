// The few pieces of Python semantics the original status line's output
// depends on (shared/specs/statusline.md §3.4, §4): %-formatting of floats,
// str() of a value, int/float arithmetic and truthiness.
//
// Numbers are held as moat::Value (integer or double) rather than double
// because the original's fallback forms print them with str(), where the
// type shows: an int sum prints `1650`, a float sum `60.0`.
#pragma once

#include <moat/value.hpp>

#include <string>

namespace moat::statusline {

/// Python's `"%<flags><width>.<precision>f" % x`: round half to even on the
/// exact binary value, minimum width, right-aligned, `-0.0` keeps its sign.
/// `plus` adds the `+` flag. Non-finite values print as Python does:
/// `nan` (never signed by the sign bit; `+nan` with `plus`), `inf`, `-inf`.
std::string percent_f(double x, int width, int precision, bool plus = false);

/// Python's str(): `None` for an invalid value, otherwise moat::text()
/// (`1650`, `60.0`, `120.5`, `True`, strings as themselves).
std::string py_str(const moat::Value& v);

/// Numbers are what Value::is_number() says: integers, doubles and booleans,
/// the values Python arithmetic and `%f` accept; everything else (None,
/// strings, lists, dicts) raises TypeError there.

/// Python `a + b` for two numbers (throws
/// std::invalid_argument otherwise): int + int stays an integer (bool counts
/// as int), anything with a double gives a double. An integer sum outside
/// int64 becomes a double (Python's ints are unbounded; ours are not).
moat::Value py_add(const moat::Value& a, const moat::Value& b);

/// Python unary minus for a number: an integer stays an integer (so `-0` is
/// `0`, which prints `0.0`), a double flips its sign (`-0.0` prints `-0.0`).
/// Throws std::invalid_argument for a non-number.
moat::Value py_neg(const moat::Value& v);

/// Python bool(): False for None, zero, empty strings, lists and dicts;
/// True otherwise (NaN included).
bool py_truth(const moat::Value& v) noexcept;

} // namespace moat::statusline
