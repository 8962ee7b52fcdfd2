// TOML text that toml++ 3.3.0 cannot take as it is (test/fuzz/corpus/config/regression-*):
// every loader path gives a syntax error or the text's own values, never a crash.
#include <catch2/catch.hpp>

#include "config_toml.hpp"

#include <string>

using namespace moat;

namespace {

const ConfigKey keys[] = {{"label", KeyType::string, "\"\"", "label"}};

std::string error_of(std::string_view text) {
    try {
        parse_config(text, "test.toml", "x", keys);
    } catch (const ConfigError& e) {
        return e.what();
    }
    return "no error";
}

} // namespace

TEST_CASE("a table header that starts with a character no key starts with is a syntax error", "[config]") {
    // toml++ 3.3.0 asserted here (an abort in a Debug build)
    CHECK(error_of("[&x]\n").starts_with("test.toml:1:2: TOML syntax error: "));
    CHECK(error_of("[x]\nlabel = \"a\"\n[[&y]]\n").starts_with("test.toml:3:"));
}

TEST_CASE("characters toml++ 3.3.0 cannot classify as whitespace or not", "[config]") {
    // U+046E, U+FEF7, U+00E4, U+2D6E where toml++ looks for whitespace: a
    // syntax error at the character (they reached __builtin_unreachable())
    CHECK(error_of("\xd1\xae").starts_with("test.toml:1:1: TOML syntax error: "));
    CHECK(error_of("\xef\xbb\xb7uuue%_s").starts_with("test.toml:1:1: TOML syntax error: "));
    CHECK(error_of("[x]\nlabel = 1\xc3\xa4\n").starts_with("test.toml:2:10: TOML syntax error: "));
    CHECK(error_of("[x]\n\xe2\xb5\xae = 1\n").starts_with("test.toml:2:1: TOML syntax error: "));
    // and the description names the character itself, not a stand-in
    CHECK(error_of("[x]\nlabel = 1\xc3\xa4\n").find("\xc3\xa4") != std::string::npos);

    // In strings, comments and quoted keys they are what they are.
    const std::string text = "# K\xc3\xbc" "che, \xce\xb1\xce\xb2\n"
                             "[x]\nlabel = \"K\xc3\xbc" "che \xd1\xae \xef\xbb\xb7 \xe3\x80\x80|\xc2\xa0|\" # \xc3\xa4\n";
    Config c = parse_config(text, "test.toml", "x", keys);
    CHECK(c.get_string("label") == "K\xc3\xbc" "che \xd1\xae \xef\xbb\xb7 \xe3\x80\x80|\xc2\xa0|");
    ConfigNode root = parse_toml("\"K\xc3\xbc" "che\" = { \"\xc3\xa4\" = [\"\xc3\xb6\"] }\n", "doc.toml");
    CHECK(root.keys() == std::vector<std::string>{"K\xc3\xbc" "che"});
    ConfigNode inner = root.get("K\xc3\xbc" "che");
    CHECK(inner.keys() == std::vector<std::string>{"\xc3\xa4"});
    CHECK(inner.get("\xc3\xa4").at(0).as_string() == "\xc3\xb6");
    CHECK(inner.get("\xc3\xa4").location() == "doc.toml:1: ");
}

TEST_CASE("a private-use character that would come back as another one is refused", "[config]") {
    CHECK(error_of("[x]\nlabel = \"ab\xee\x80\x80\"\n") ==
          "test.toml:2:12: TOML syntax error: the private-use character U+E000 is not supported");
    // one outside the stand-ins' range is an ordinary character
    CHECK(parse_config("[x]\nlabel = \"\xef\xa3\xbf\"\n", "test.toml", "x", keys).get_string("label") == "\xef\xa3\xbf");
}
