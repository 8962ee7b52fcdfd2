// Configuration keys (§5, D5), mode parameters and their precedence (§5.1, §15, D6).
#include "inverter_test_support.hpp"

#include <memory>

#include "params.hpp"

using namespace moat::inverter;
using namespace moat::inverter::test;
using Catch::Matchers::Contains;

namespace {

moat::Config load(std::string_view text) {
    return moat::parse_config(text, "inv.toml", "inverter", config_keys);
}

std::string error_of(std::string_view text) {
    try {
        auto c = load(text);
        mode_defaults(c);
    } catch (const moat::ConfigError& e) {
        return e.what();
    }
    return "no error";
}

} // namespace

TEST_CASE("config keys: the declared defaults are SystemParams' defaults", "[inverter][config]") {
    auto c = load("[inverter]\n");
    CHECK(system_params(c) == SystemParams{});
    CHECK(c.get_string("mode") == "off");
    CHECK(mode_defaults(c).empty());
    for (auto& key : config_keys) {
        INFO(key.name);
        CHECK(key.description != nullptr);
        REQUIRE(key.default_value != nullptr);  // nothing is required
        if (key.type == moat::KeyType::number) {
            double v = load("[inverter]\n").get_number(key.name);
            CHECK(key.min <= v);
            CHECK(v <= key.max);
        }
    }
}

TEST_CASE("config keys: the sample configuration", "[inverter][config]") {
    auto c = load(R"(
[inverter]
mode = "remote"
p_step = 200
pg_min = -200
pg_max = 4500
inv_eff = 0.88
p_per_phase = 4500
pv_delta = 30
cap_scale = 4

[inverter.modes.p_grid]
power = -50
excess = -1

[inverter.modes.remote]
power = 1000
power_low = 100
soc_low = 0.25
soc_low_zero = 0.2
soc_low_ok = 0.3
)");
    CHECK(system_params(c) == sample_cfg());
    CHECK(parse_mode(c.get_string("mode")) == Mode::remote);
    auto d = mode_defaults(c);
    CHECK(d.at(Mode::p_grid) == Op{{"power", -50.0}, {"excess", -1.0}});
    CHECK(d.at(Mode::remote).at("soc_low_ok") == 0.3);
    CHECK(d.count(Mode::p_inv) == 0);
}

TEST_CASE("config errors name file, line and key (D5)", "[inverter][config]") {
    // Unknown or non-scalar system keys are errors before the plugin starts.
    CHECK_THAT(error_of("[inverter]\nsolar_p = 5\n"), Contains("inv.toml:2: [inverter] key 'solar_p': unknown key"));
    CHECK_THAT(error_of("[inverter]\ninv_eff = 0\n"), Contains("key 'inv_eff': 0 is out of range [0.5, 1]"));
    CHECK_THAT(error_of("[inverter]\ntop_off = 1\n"), Contains("key 'top_off': expected boolean"));
    CHECK_THAT(error_of("[inverter]\nmode = \"hold\"\n"), Contains("'hold' is not one of"));
    CHECK(error_of("[inverter]\nmode = \"gridsetpoint\"\n") == "no error");
    CHECK_THAT(error_of("[inverter]\n[inverter.modes.hold]\npower = 1\n"),
               Contains("inv.toml:2: [inverter] key 'modes': hold: unknown mode"));
    CHECK_THAT(error_of("[inverter]\n[inverter.modes.p_grid]\npwer = 1\n"),
               Contains("key 'modes': p_grid: unknown parameter for p_grid: 'pwer'"));
    CHECK_THAT(error_of("[inverter]\n[inverter.modes.p_grid]\npower = \"1\"\n"),
               Contains("p_grid.power: expected a number or a boolean"));
    CHECK_THAT(error_of("[inverter]\n[inverter.modes.p_inv]\nphase = 4\n"), Contains("phase: 4 is out of range [1, 3]"));
    CHECK_THAT(error_of("[inverter]\n[inverter.modes.soc]\ndest_soc = 50\n"), Contains("dest_soc: 50 is out of range"));
    CHECK_THAT(error_of("[inverter]\nmodes = {p_grid = 5}\n"), Contains("p_grid: expected a table of parameters"));
}

TEST_CASE("modes: fixed order, names and old names", "[inverter][modes]") {
    std::vector<std::string> names;
    for (auto& m : modes()) names.emplace_back(m.name);
    CHECK(names == std::vector<std::string>{"off", "idle", "p_grid", "p_inv", "i_batt", "soc", "remote", "analyze"});
    for (auto& m : modes()) CHECK(parse_mode(m.name) == m.mode);
    CHECK(parse_mode("gridsetpoint") == Mode::p_grid);
    CHECK(parse_mode("setsoc") == Mode::soc);
    CHECK_FALSE(parse_mode("p_off"));
    CHECK_FALSE(parse_mode(""));
}

TEST_CASE("mode parameters: what GetModeInfo lists", "[inverter][modes]") {
    auto listed = [](Mode m) {
        std::vector<std::string> out;
        for (auto& p : mode_info(m).params)
            if (!p.hidden) out.emplace_back(p.name);
        return out;
    };
    using V = std::vector<std::string>;
    CHECK(listed(Mode::off) == V{"power"});
    CHECK(listed(Mode::p_grid) == V{"power", "excess"});
    CHECK(listed(Mode::p_inv) == V{"power", "excess", "phase"});
    CHECK(listed(Mode::i_batt) == V{"current"});
    CHECK(listed(Mode::soc) == V{"dest_soc", "power_in", "power_out", "excess"});  // fix #9: excess listed
    CHECK(listed(Mode::remote) == V{"power", "power_ref", "power_override", "power_low", "low_grid", "limit",
                                    "soc_low_zero", "soc_low", "soc_low_ok", "soc_high", "soc_high_ok"});
    CHECK(find_param(Mode::remote, "mode", true));
    CHECK_FALSE(find_param(Mode::remote, "mode", false));
}

TEST_CASE("check_param: SetMode / SetModeParam validation (D6)", "[inverter][modes]") {
    CHECK_FALSE(check_param(Mode::p_inv, "phase", 2.0, 3, false));
    CHECK_FALSE(check_param(Mode::p_inv, "phase", std::nullopt, 3, false));  // None = distribute
    CHECK(check_param(Mode::p_inv, "phase", 3.0, 2, false) == "phase: 3 is out of range [1, 2]");
    CHECK(check_param(Mode::p_inv, "phase", 0.0, 3, false));
    CHECK(check_param(Mode::p_inv, "phase", 1.5, 3, false) == "phase: expected an integer");
    CHECK(check_param(Mode::p_grid, "phase", 1.0, 3, false) == "unknown parameter for p_grid: 'phase'");
    CHECK(check_param(Mode::p_grid, "", 1.0, 3, false));
    CHECK(check_param(Mode::p_grid, "_l", 1.0, 3, false));
    CHECK(check_param(Mode::p_grid, "power", std::nullopt, 3, false) == "power: None is not allowed");
    CHECK_FALSE(check_param(Mode::p_grid, "excess", -1.0, 3, false));
    CHECK_FALSE(check_param(Mode::soc, "excess", 100.0, 3, false));
    CHECK(check_param(Mode::soc, "power_out", 100.0, 3, false));  // must be <= 0
    CHECK(check_param(Mode::soc, "dest_soc", 1.2, 3, false));
    CHECK(check_param(Mode::remote, "low_grid", 2.0, 3, false) == "low_grid: expected a boolean");
    CHECK(check_param(Mode::remote, "mode", 0.0, 3, false));         // SetModeParam('mode') is refused
    CHECK_FALSE(check_param(Mode::remote, "mode", 0.0, 3, true));    // SetMode args may set it
    CHECK(check_param(Mode::p_grid, "power", std::numeric_limits<double>::quiet_NaN(), 3, false));
}

TEST_CASE("params_for: arguments > earlier values > configured defaults > built-in (§5.1)", "[inverter][modes]") {
    ModeDefaults cfg{{Mode::p_grid, {{"power", -50.0}, {"excess", -1.0}}}};
    // Start p_grid without arguments: configured defaults, built-ins for the rest.
    Op op = params_for(Mode::p_grid, std::nullopt, {}, {}, cfg);
    CHECK(op == Op{{"power", -50.0}, {"excess", -1.0}});
    // SetMode(p_grid, power=100): the argument wins and stays (no step 3).
    op = params_for(Mode::p_grid, Mode::p_grid, op, {{"power", 100.0}}, cfg);
    CHECK(op == Op{{"power", 100.0}, {"excess", -1.0}});
    // SetMode(p_grid, {}) again: the earlier value wins over the configured default.
    op = params_for(Mode::p_grid, Mode::p_grid, op, {}, cfg);
    CHECK(op.at("power") == 100.0);
    // A change of mode starts afresh: p_inv's power is not p_grid's.
    op = params_for(Mode::p_inv, Mode::p_grid, op, {}, cfg);
    CHECK(op == Op{{"power", 0.0}, {"excess", std::nullopt}, {"phase", std::nullopt}});
    op = params_for(Mode::p_grid, Mode::p_inv, op, {{"excess", std::nullopt}}, cfg);
    CHECK(op == Op{{"power", -50.0}, {"excess", std::nullopt}});  // an explicit None is an argument too
}
