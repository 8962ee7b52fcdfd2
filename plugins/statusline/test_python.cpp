// Python semantics the line relies on (python.hpp). Expected strings are what
// python3 prints for the same expressions.
#include <catch2/catch.hpp>

#include "python.hpp"

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>

using moat::Value;
using namespace moat::statusline;

template <> struct Catch::StringMaker<moat::Value> {
    static std::string convert(const moat::Value& v) { return std::string(moat::kind_name(v)) + " " + moat::repr(v); }
};

TEST_CASE("percent_f rounds half to even on the exact binary value, as Python's %f", "[python]")
{
    struct Case {
        double x;
        int precision;
        const char* python;
    };
    // Exact ties (0.5, 2.5, 0.125, 0.25) go to even; values that only look
    // like ties (2.675, 1.005, 0.045, 0.15, 0.35 are below, 0.05 and 2.35
    // above in binary) round by their binary value.
    const Case cases[] = {
        {0.5, 0, "0"},        {1.5, 0, "2"},        {2.5, 0, "2"},          {-2.5, 0, "-2"},
        {-0.5, 0, "-0"},      {0.125, 2, "0.12"},   {0.375, 2, "0.38"},     {2.675, 2, "2.67"},
        {1.005, 2, "1.00"},   {0.045, 2, "0.04"},   {0.05, 1, "0.1"},       {0.15, 1, "0.1"},
        {0.25, 1, "0.2"},     {0.35, 1, "0.3"},     {2.35, 1, "2.4"},       {-0.4, 0, "-0"},
        {-0.0, 1, "-0.0"},    {815.7, 0, "816"},    {-4.8, 0, "-5"},        {53.15, 2, "53.15"},
        {123456789.5, 0, "123456790"}, {0.0049999, 2, "0.00"}, {1e22, 0, "10000000000000000000000"},
    };
    for (const Case& c : cases) {
        INFO("%." << c.precision << "f of " << c.x);
        CHECK(percent_f(c.x, 0, c.precision) == c.python);
    }
}

TEST_CASE("percent_f pads to the width on the left and never truncates", "[python]")
{
    CHECK(percent_f(12.3, 5, 1) == " 12.3");
    CHECK(percent_f(-200.0, 5, 1) == "-200.0");
    CHECK(percent_f(-0.0, 5, 1) == " -0.0");
    CHECK(percent_f(-0.4, 5, 0) == "   -0");
    CHECK(percent_f(12345.6, 3, 0) == "12346");
    CHECK(percent_f(5, 3, 0) == "  5");
}

TEST_CASE("percent_f with the + flag always shows the sign", "[python]")
{
    CHECK(percent_f(0.39, 0, 2, true) == "+0.39");
    CHECK(percent_f(-0.004, 0, 2, true) == "-0.00");
    CHECK(percent_f(-0.0, 0, 2, true) == "-0.00");
    CHECK(percent_f(0.0, 0, 2, true) == "+0.00");
    CHECK(percent_f(1.0, 3, 1, true) == "+1.0");
    CHECK(percent_f(2.05, 3, 1, true) == "+2.0"); // 2.04999… in binary
}

TEST_CASE("percent_f prints non-finite values like Python", "[python]")
{
    const double inf = std::numeric_limits<double>::infinity();
    const double nan = std::numeric_limits<double>::quiet_NaN();
    CHECK(percent_f(inf, 5, 1) == "  inf");
    CHECK(percent_f(-inf, 3, 0) == "-inf");
    CHECK(percent_f(nan, 5, 1) == "  nan");
    CHECK(percent_f(-nan, 5, 1) == "  nan"); // Python ignores NaN's sign bit
    CHECK(percent_f(nan, 5, 1, true) == " +nan");
    CHECK(percent_f(-nan, 3, 1, true) == "+nan");
    CHECK(percent_f(inf, 0, 2, true) == "+inf");
}

TEST_CASE("py_str is Python's str() with None for invalid", "[python]")
{
    CHECK(py_str(Value::invalid()) == "None");
    CHECK(py_str(1650) == "1650");
    CHECK(py_str(-700) == "-700");
    CHECK(py_str(60.0) == "60.0");
    CHECK(py_str(120.5) == "120.5");
    CHECK(py_str(-695.2) == "-695.2");
    CHECK(py_str(53.15) == "53.15");
    CHECK(py_str(0.1 + 0.2) == "0.30000000000000004");
    CHECK(py_str(1e-05) == "1e-05");
    CHECK(py_str(true) == "True");
    CHECK(py_str("n/a") == "n/a");
    CHECK(py_str("") == "");
}

TEST_CASE("py_add keeps integers integral and turns anything with a double into a double", "[python]")
{
    CHECK(py_add(0, 1650).kind() == Value::Kind::integer);
    CHECK(py_add(0, 1650) == Value(1650));
    CHECK(py_add(1650, 1190) == Value(2840));
    CHECK(py_add(0, 60.0).kind() == Value::Kind::floating);
    CHECK(py_add(0, 60.0) == Value(60.0));
    CHECK(py_add(60.0, 40).kind() == Value::Kind::floating);
    CHECK(py_add(0.1, 0.2).as_double() == 0.1 + 0.2);
    // bool is an int subclass in Python: True + 1 == 2.
    CHECK(py_add(true, 1).kind() == Value::Kind::integer);
    CHECK(py_add(true, 1) == Value(2));
    CHECK(py_add(true, false) == Value(1));
}

TEST_CASE("py_add does not overflow int64 but goes to double", "[python]")
{
    const auto big = std::numeric_limits<std::int64_t>::max();
    const Value sum = py_add(big, 1);
    CHECK(sum.kind() == Value::Kind::floating);
    CHECK(sum.as_double() == 9223372036854775808.0);
}

TEST_CASE("py_add and py_neg reject what Python's arithmetic rejects", "[python]")
{
    CHECK_THROWS_AS(py_add(0, Value::invalid()), std::invalid_argument);
    CHECK_THROWS_AS(py_add("1", 1), std::invalid_argument);
    CHECK_THROWS_AS(py_add(1, Value::make_list({1})), std::invalid_argument);
    CHECK_THROWS_AS(py_neg(Value::invalid()), std::invalid_argument);
    CHECK_THROWS_AS(py_neg("3"), std::invalid_argument);
}

TEST_CASE("py_neg: integer zero stays 0, double zero becomes -0.0", "[python]")
{
    CHECK(py_neg(0).kind() == Value::Kind::integer);
    CHECK(percent_f(*py_neg(0).as_number(), 5, 1) == "  0.0");
    CHECK(py_neg(0.0).kind() == Value::Kind::floating);
    CHECK(std::signbit(py_neg(0.0).as_double()));
    CHECK(percent_f(*py_neg(0.0).as_number(), 5, 1) == " -0.0");
    CHECK(py_neg(200.0) == Value(-200.0));
    CHECK(py_neg(-5) == Value(5));
    CHECK(py_neg(true) == Value(-1));
    CHECK(py_neg(std::numeric_limits<std::int64_t>::min()).kind() == Value::Kind::floating);
}

TEST_CASE("py_truth is Python's bool()", "[python]")
{
    CHECK_FALSE(py_truth(Value::invalid()));
    CHECK_FALSE(py_truth(0));
    CHECK_FALSE(py_truth(0.0));
    CHECK_FALSE(py_truth(-0.0));
    CHECK_FALSE(py_truth(false));
    CHECK_FALSE(py_truth(""));
    CHECK_FALSE(py_truth(Value::List{}));
    CHECK_FALSE(py_truth(Value::Dict{}));
    CHECK(py_truth(1));
    CHECK(py_truth(-1));
    CHECK(py_truth(0.5));
    CHECK(py_truth(std::numeric_limits<double>::quiet_NaN()));
    CHECK(py_truth(true));
    CHECK(py_truth("0"));
    CHECK(py_truth(Value::make_list({0})));
}
