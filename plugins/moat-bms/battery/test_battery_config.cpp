// Configuration: the sample config parses, every bad key is named, the TOML
// overrides are located by file and line, a wrong module count is an error.
#include <memory>

#include "test_battery_support.hpp"

using namespace moat::bms::battery;
using namespace moat::bms::battery::test;
using Catch::Matchers::Contains;

namespace {

std::vector<Problem> problems_of(const Value& tree, Options o = {}) { return parse_battery_config(tree, o).problems; }

bool has_problem(const std::vector<Problem>& ps, const std::string& key) {
    for (const auto& p : ps)
        if (p.key == key) return true;
    return false;
}

Value with(Value tree, std::string_view dotted, Value v) {
    Value delta(Map{});
    // Build {a: {b: {c: v}}} from "a.b.c".
    std::vector<std::string> parts;
    std::string part;
    for (char ch : dotted) {
        if (ch == '.') parts.push_back(part), part.clear();
        else part += ch;
    }
    parts.push_back(part);
    Value leaf = std::move(v);
    for (auto it = parts.rbegin(); it != parts.rend(); ++it) leaf = Value(Map{{*it, std::move(leaf)}});
    moat::bms::merge_config(tree, leaf);
    return tree;
}

moat::Config load(std::string_view text) {
    return moat::parse_config(text, "bms.toml", "moat-bms", option_keys());
}

} // namespace

TEST_CASE("bms.cfg parses with the documented defaults") {
    Parsed p = parse_battery_config(bms_cfg_tree(), Options{});
    REQUIRE(p.problems.empty());
    const BatteryConfig& c = *p.config;
    CHECK(c.n == 16);
    CHECK(c.name == "battery1");
    CHECK(c.u_ext_max == Catch::Detail::Approx(16 * 3.58));  // batt.u.ext absent: n × cell range
    CHECK(c.u_ext_min == Catch::Detail::Approx(16 * 2.9));
    CHECK(c.cell.decay_s == 430);
    CHECK(c.balance.n == 4);
    CHECK(c.poll_k_ms == 15000);
}

TEST_CASE("each bad key is named") {
    CHECK(problems_of(with(bms_cfg_tree(), "batt.n", 32)).empty());  // the ring header's limit
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "batt.n", 33)), "batt.n"));
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "batt.n", 0)), "batt.n"));
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "batt.n", 2.5)), "batt.n"));
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "batt.n", "16")), "batt.n"));
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "poll.k", "-")), "poll.k"));  // deleted: missing
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "cell.u.lim.max", 3.6)), "cell.u"));  // above ext.max
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "cell.u.corr", 0.2)), "cell.u.corr"));
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "batt.cap.loss", 1.0)), "batt.cap.loss"));
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "batt.i.ext.min", 10)), "batt.i.ext.min"));
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "cell.balance.n", -1)), "cell.balance.n"));
    CHECK(has_problem(problems_of(with(bms_cfg_tree(), "batteries", moat::bms::msgpack::Array{Map{}, Map{}})), "batteries"));
    Options o;
    o.stale_pack_s = 2.9;  // below 3 × t.voltage
    CHECK(has_problem(problems_of(bms_cfg_tree(), o), "t.voltage"));
    o = {};
    o.stale_cell_s = 5;  // below 3 × t.cellvoltage
    CHECK(has_problem(problems_of(bms_cfg_tree(), o), "t.cellvoltage"));
}

TEST_CASE("batt.p.loss is a fallback with a warning") {
    Value t = with(with(bms_cfg_tree(), "batt.cap.loss", "-"), "batt.p.loss", 0.03);
    Parsed p = parse_battery_config(t, Options{});
    REQUIRE(p.config);
    CHECK(p.config->cap_loss == 0.03);
    REQUIRE_FALSE(p.warnings.empty());
    CHECK_THAT(p.warnings.front(), Contains("batt.p.loss"));
}

TEST_CASE("a wrong module count is a clear error") {
    BatteryConfig c = bms_cfg();
    CHECK_FALSE(check_module_count(c, 16));
    auto p = check_module_count(c, 15);
    REQUIRE(p);
    CHECK(p->key == "batt.n");
    CHECK_THAT(p->reason, Contains("16") && Contains("15 modules"));
}

TEST_CASE("the plugin's keys and the overrides: errors name file, line and key") {
    moat::Config cfg = load("[moat-bms]\n"
                            "stale_cell_s = 20\n"
                            "[moat-bms.config.batt.batt]\n"
                            "n = 40\n");
    Options o = read_options(cfg);
    CHECK(o.stale_cell_s == 20);
    CHECK(o.stale_pack_s == 5);
    CHECK(o.enforce_temp);
    CHECK(o.dc_voltage == DcVoltageSource::cells);

    Value tree = bms_cfg_tree();
    Value over = overrides(cfg);
    REQUIRE(over.find("batt"));
    moat::bms::merge_config(tree, *over.find("batt"));
    CHECK(*moat::bms::config_at(tree, "batt.n") == Value(40));
    Value missing = with(tree, "cell.u.lim.max", "-");
    Parsed p = parse_battery_config(missing, o);
    REQUIRE(p.problems.size() >= 2);
    try {
        raise(cfg, "batt", p.problems);
        FAIL("no error");
    } catch (const moat::ConfigError& e) {
        std::string msg = e.what();
        CHECK_THAT(msg, Contains("bms.toml:4") && Contains("config.batt.batt.n") && Contains("1 to 32"));
        CHECK_THAT(msg, Contains("controller configuration key 'batt.cell.u.lim.max': missing"));
    }
}

TEST_CASE("bad option values are refused by the host's validation") {
    CHECK_THROWS_AS(load("[moat-bms]\nstale_pack_s = 0\n"), moat::ConfigError);
    CHECK_THROWS_AS(load("[moat-bms]\ndc_voltage = \"adc\"\n"), moat::ConfigError);
    CHECK_THROWS_AS(load("[moat-bms]\nconfig_source = 3\n"), moat::ConfigError);
}
