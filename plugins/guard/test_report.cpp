// The command's output: the table, the JSON and the exit code.
#include "report.hpp"

#include <catch2/catch.hpp>

using namespace moat::guard;
using moat::Value;
using moat::critical::Reading;
using moat::critical::State;

namespace {
CheckRow row(std::string_view name, Reading r) {
    const auto* c = moat::critical::find_check(name);
    REQUIRE(c);
    return CheckRow{c, "com.victronenergy.settings", r, moat::critical::evaluate(*c, r)};
}
} // namespace

TEST_CASE("exit code: 0 all ok, 1 a warning or unknown, 2 a critical check", "[guard]") {
    std::vector<CheckRow> rows{row("OvervoltageFeedIn", {true, 0}), row("Hub4Mode", {true, 3})};
    CHECK(exit_code(rows) == 0);
    rows.push_back(row("AssistantId", Reading{}));
    CHECK(exit_code(rows) == 1);
    rows.push_back(row("Hub4Mode", {true, 1}));
    CHECK(exit_code(rows) == 1);
    rows.push_back(row("OvervoltageFeedIn", {true, 1}));
    CHECK(exit_code(rows) == 2);
    CHECK(worst(rows) == State::critical);
}

TEST_CASE("the table lists every check and a summary", "[guard]") {
    std::vector<CheckRow> rows{row("OvervoltageFeedIn", {true, 1}), row("AssistantId", Reading{})};
    std::string t = format_table(rows);
    CHECK(t.find("OvervoltageFeedIn  critical") != std::string::npos);
    CHECK(t.find("AssistantId        unknown   ---") != std::string::npos);
    CHECK(t.find("critical: 1 critical, 0 warning, 1 unknown, 0 ok") != std::string::npos);
}

TEST_CASE("JSON: strings escaped, invalid as null, numbers as numbers", "[guard]") {
    CHECK(moat::json_string("a\"b\\c\n\x01") == "\"a\\\"b\\\\c\\n\\u0001\"");
    CHECK(json_value(Value()) == "null");
    CHECK(json_value(Value(1)) == "1");
    CHECK(json_value(Value(55.2)) == "55.2");
    CHECK(json_value(Value(1e-5)) == "1e-05");
    CHECK(json_value(Value("x")) == "\"x\"");
    std::vector<CheckRow> rows{row("OvervoltageFeedIn", {true, 1})};
    std::string j = format_json(rows);
    CHECK(j.find("\"worst\": \"critical\", \"critical\": 1") != std::string::npos);
    CHECK(j.find("\"name\": \"OvervoltageFeedIn\", \"state\": \"critical\", \"value\": 1") != std::string::npos);
}
