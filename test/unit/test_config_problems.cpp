// Config::problem: a plugin's check records every problem and goes on; the
// host reports them all (--check-config: a file fixed in one pass).
#include <catch2/catch.hpp>

#include "config_toml.hpp"

using namespace moat;

namespace {

const ConfigKey keys[] = {{"items", KeyType::array, "[]", "items"}, {"mode", KeyType::string, "\"a\"", "mode"}};

} // namespace

TEST_CASE("problems are recorded where they are, and thrown together", "[config]") {
    Config c = parse_config("[dev]\nmode = \"b\"\nitems = [\n  1,\n  \"x\",\n]\n", "test.toml", "dev", keys);
    CHECK(c.problems().empty());
    CHECK_NOTHROW(c.throw_problems());
    c.problem("mode", "'b' needs items");
    const ConfigNode items = c.node("items");
    c.problem_at(items.at(0), "key 'items'", "item 1: expected a string");
    c.problem_at(ConfigNode(), "key 'items'", "somewhere");
    CHECK(c.problems() == std::vector<std::string>{"test.toml:2: [dev] key 'mode': 'b' needs items",
                                                   "test.toml:4: [dev] key 'items': item 1: expected a string",
                                                   "test.toml: [dev] key 'items': somewhere"});
    // a check that threw: each line of its message is one problem
    try {
        c.fail_at(items.at(1), "key 'items'", "item 2: unknown");
    } catch (const ConfigError& e) {
        c.problem(e);
    }
    c.problem(ConfigError("a.toml:1: [dev] one\na.toml:2: [dev] two\n"));
    CHECK(c.problems().size() == 6);
    CHECK(c.problems()[3] == "test.toml:5: [dev] key 'items': item 2: unknown");
    CHECK(c.problems()[5] == "a.toml:2: [dev] two");
    // copies share them (the host reads what validate() recorded on its copy)
    Config copy = c;
    CHECK(copy.problems().size() == 6);
    CHECK_THROWS_WITH(c.throw_problems(), "test.toml:2: [dev] key 'mode': 'b' needs items\n"
                                          "test.toml:4: [dev] key 'items': item 1: expected a string\n"
                                          "test.toml: [dev] key 'items': somewhere\n"
                                          "test.toml:5: [dev] key 'items': item 2: unknown\n"
                                          "a.toml:1: [dev] one\n"
                                          "a.toml:2: [dev] two");
    CHECK(copy.problems().empty());
    CHECK_NOTHROW(copy.throw_problems());
    // the host takes what a check left
    c.problem("mode", "again");
    CHECK(detail::ConfigAccess::take_problems(c) == std::vector<std::string>{"test.toml:2: [dev] key 'mode': again"});
    CHECK(c.problems().empty());
}
