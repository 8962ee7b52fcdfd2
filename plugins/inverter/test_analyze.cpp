// The analyze mode (§14.8 with the §19 #11 fixes) in virtual time: its
// decisions as pure functions, then whole runs against a fake world that is
// both the mode loop's LoopIo (a Multi that follows its setpoints at once)
// and the BMS (cells that move with the energy, or scripted readings).
#include "inverter_test_support.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <fmt/format.h>
#include <moat/loop.hpp>
#include <moat/task.hpp>

#include "analyze.hpp"
#include "mode_loop.hpp"
#include "supervisor.hpp"

using namespace moat;
using namespace moat::inverter;
using namespace moat::inverter::test;
using namespace std::chrono_literals;

namespace {

// ext.min 2.9 < lim.min 3.0 < lim.max 3.45 < ext.max 3.55, d 10 mV.
const CellLimits limits{3.0, 3.45, 2.9, 3.55, 0.01};

Value config_tree(double d = 0.01) {
    auto pair = [](double lo, double hi) { return Value::make_dict({{"min", lo}, {"max", hi}}); };
    return Value::make_dict(
        {{"serial", "x"},
         {"cell", Value::make_dict({{"u", Value::make_dict({{"lim", pair(3.0, 3.45)}, {"ext", pair(2.9, 3.55)}})},
                                    {"balance", Value::make_dict({{"d", d}, {"n", 3}})}})}});
}

/// The Multi and the battery with its BMS. The cells move by `k` V per W·s
/// discharged, by k·`efficiency` per W·s charged; the device counters count
/// the energy at the battery. Or, with `script`, each GetVoltages takes the
/// next (min, max) pair (the last repeats).
struct World final : LoopIo, BmsIo {
    World(Clock& c, Controller& ctl) : clock(c), ctl(ctl), t0(c.now()), last(c.now()) {}

    Clock& clock;
    Controller& ctl;
    TimePoint t0, last;
    Inputs in = defaults();

    double u = 3.30;            ///< the middle cell voltage
    double spread = 0.004;      ///< max_cell - min_cell
    double k = 2e-6;            ///< V per W·s
    double efficiency = 0.95;   ///< of charging
    double p_inv = 0;           ///< what the Multi does now (the last write), + = inverting
    Work device;                ///< since the last clear
    double balancing = 0;       ///< V per s the spread shrinks while the lowest cell is above 3.5 V
    std::vector<std::pair<double, double>> script;
    std::size_t next = 0;

    struct Write {
        double t;
        double total;  ///< Σ setpoints, Victron sign: + = the Multi takes power from AC (charging)
        bool top_off;
        bool capacity_test;
    };
    std::vector<Write> writes;
    std::vector<Value::Dict> reports;
    std::vector<std::string> calls;
    std::vector<std::pair<Mode, Op>> handovers;
    std::vector<std::tuple<double, double, bool>> capacities;
    bool capacity_answer = true;
    Event gone;
    std::optional<double> gone_at;  ///< s: the BMS leaves then

    double now_s() const { return std::chrono::duration<double>(clock.now() - t0).count(); }

    void advance() {
        double dt = std::chrono::duration<double>(clock.now() - last).count();
        last = clock.now();
        double e = p_inv * dt;
        if (e > 0) {
            device.dis += e;
            u -= k * e;
        } else {
            device.chg += -e;
            u += k * efficiency * -e;
        }
        if (u - spread / 2 >= 3.5) spread = std::max(0.002, spread - balancing * dt);
        if (gone_at && now_s() >= *gone_at) gone.set();
    }

    // ---- LoopIo
    Task<Inputs> inputs() override {
        advance();
        Inputs r = in;
        for (int i = 0; i < 3; ++i) r.grid[i] = -p_inv / 3;  // no loads: the grid pays for the Multi
        co_return r;
    }
    Task<void> write(std::vector<double> setpoints) override {
        advance();
        double total = 0;
        for (double s : setpoints) total += s;
        p_inv = -total;
        writes.push_back({now_s(), total, ctl.params.top_off, ctl.capacity_test});
        co_return;
    }
    Task<void> trigger(Duration sleep) override {
        co_await sleep_for(sleep);
        advance();
    }
    void record(const Cycle&) override {}
    void reading(double) override {}
    void soc_report(const SocReport&) override {}
    void remote_report(const RemoteReport&) override {}
    double solar_p() override { return 0; }
    TimePoint time_now() override { return clock.now(); }
    void analyze_report(const Value::Dict& r) override { reports.push_back(r); }
    void hand_over(Mode next, const Op& args) override { handovers.emplace_back(next, args); }

    // ---- BmsIo
    Task<CellLimits> limits() override {
        co_return cell_limits(config_tree());
    }
    Task<CellVoltages> voltages() override {
        advance();
        if (!script.empty()) {
            auto [lo, hi] = script[std::min(next++, script.size() - 1)];
            co_return CellVoltages{lo, hi};
        }
        co_return CellVoltages{u - spread / 2, u + spread / 2};
    }
    Task<Work> work(bool poll, bool clear) override {
        advance();
        calls.push_back(fmt::format("{:.0f} GetWork {} {}", now_s(), poll, clear));
        Work w = device;
        if (clear) device = {};
        co_return w;
    }
    Task<bool> set_capacity(double cap, double loss, bool top) override {
        calls.push_back("SetCapacity");
        capacities.emplace_back(cap, loss, top);
        co_return capacity_answer;
    }
    Task<std::string> lost() override {
        co_await gone.wait();
        co_return std::string("com.victronenergy.battery.t left the bus");
    }

    // ---- what happened
    /// The steps in the order they were reported, each once.
    std::vector<std::string> steps() const {
        std::vector<std::string> out;
        for (auto& r : reports) {
            auto it = r.find("step");
            if (it == r.end()) continue;
            std::string s = text(it->second);
            if (out.empty() || out.back() != s) out.push_back(s);
        }
        return out;
    }
    std::vector<Value::Dict> reports_of(const std::string& step) const {
        std::vector<Value::Dict> out;
        for (auto& r : reports)
            if (auto it = r.find("step"); it != r.end() && text(it->second) == step) out.push_back(r);
        return out;
    }
};

const LoopTiming timing{1s, 20s};

struct AnalyzeRig {
    AnalyzeRig() { loop.set_clock(clock); }
    Loop loop;
    VirtualClock clock{loop};
    Controller ctl{SystemParams{}};
    World world{clock, ctl};
    Op op{{"p_chg", -1000.0}, {"p_dis", 1000.0}, {"balance", 10.0}};
    std::optional<std::string> failure;  ///< what run_analyze threw
    bool aborted = false;                ///< ... as ModeAbort

    void run(Duration total) {
        run_for(loop, clock, total, [&]() -> Task<void> {
            try {
                auto t = run_analyze(ctl, world, world, timing, op);
                co_await t;
            } catch (const ModeAbort& e) {
                failure = e.what();
                aborted = true;
            } catch (const std::runtime_error& e) {
                failure = e.what();
            }
        });
    }
};

double num(const Value::Dict& d, const char* key) { return *d.at(key).as_number(); }

} // namespace

// ---------------------------------------------------------------- decisions

TEST_CASE("analyze: the thresholds between the cell limits", "[inverter][analyze]") {
    CHECK(balance_floor(limits) == Approx(3.50));
    CHECK(below_top_ceiling(limits) == Approx(3.35));  // as far below lim.max as ext.max is above it
    CHECK(top_floor(limits) == Approx(3.45 - 0.1 / 3));
    CHECK(bottom_ceiling(limits) == Approx(3.0 + 0.1 / 3));
}

TEST_CASE("analyze: the balance step counts only close cells at the top (the spread test is not inverted)",
          "[inverter][analyze]") {
    auto check = [](double lo, double hi) { return check_step(AnalyzeStep::balance, limits, {lo, hi}); };
    CHECK(check(3.49, 3.50).label == "min>umin");
    CHECK_FALSE(check(3.49, 3.50).met);
    // the original counted this one (max - min >= 3 d) and refused the balanced pack below
    CHECK_FALSE(check(3.50, 3.531).met);
    CHECK(check(3.50, 3.531).label == "max-min<dest_d");
    CHECK(check(3.50, 3.529).met);
    CHECK(check(3.52, 3.52).label == "OK");
}

TEST_CASE("analyze: the end conditions of the other steps", "[inverter][analyze]") {
    using S = AnalyzeStep;
    CHECK(check_step(S::below_top, limits, {3.30, 3.349}).label == "OK");
    CHECK_FALSE(check_step(S::below_top, limits, {3.30, 3.351}).met);
    CHECK(check_step(S::below_top, limits, {2.89, 3.40}).label == "LOW");  // a low cell ends it too
    CHECK(check_step(S::charge, limits, {3.418, 3.5}).met);
    CHECK_FALSE(check_step(S::charge, limits, {3.416, 3.5}).met);  // the lowest cell decides
    CHECK(check_step(S::recharge, limits, {3.418, 3.5}).met);
    CHECK(check_step(S::discharge, limits, {3.032, 3.3}).met);
    CHECK_FALSE(check_step(S::discharge, limits, {3.034, 3.3}).met);
    CHECK(check_step(S::discharge, limits, {3.034, 3.3}).label == "min<umin");
}

TEST_CASE("analyze: p_dis must discharge: positive inverter power, or negative grid power", "[inverter][analyze]") {
    CHECK_FALSE(p_dis_sign_problem(1000, false));
    CHECK_FALSE(p_dis_sign_problem(-800, true));
    CHECK_THAT(p_dis_sign_problem(-1000, false).value(), Catch::StartsWith("p_dis has the wrong sign"));
    CHECK_THAT(p_dis_sign_problem(0, false).value(), Catch::Contains("must be positive, not 0"));
    CHECK_THAT(p_dis_sign_problem(800, true).value(), Catch::Contains("must be negative (export), not 800"));
    CHECK(p_dis_sign_problem(0, true).has_value());
}

TEST_CASE("analyze: the loss factor", "[inverter][analyze]") {
    CHECK(loss_factor(9000, 100, 10000, 50) == Approx(1 - 9100.0 / 10051));
    CHECK(loss_factor(0, 0, 0, 0) == 1);  // nothing measured: the BMS refuses loss 1
    CHECK(loss_factor(50000, 0, 40000, 0) < 0);
}

TEST_CASE("analyze: the cell limits from the BMS's GetConfig", "[inverter][analyze]") {
    CHECK(cell_limits(config_tree()) == limits);
    // integers are numbers too (the BMS's config may hold 3 or 3.0)
    auto ints = Value::make_dict({{"cell", Value::make_dict({{"u", Value::make_dict({
                                               {"lim", Value::make_dict({{"min", 3}, {"max", 4}})},
                                               {"ext", Value::make_dict({{"min", 2}, {"max", 5}})}})},
                                           {"balance", Value::make_dict({{"d", 1}})}})}});
    CHECK(cell_limits(ints) == CellLimits{3, 4, 2, 5, 1});
    CHECK_THROWS_WITH(cell_limits(Value::make_dict({{"serial", "x"}})),
                      "the BMS configuration has no number at cell");
    auto no_d = config_tree();
    auto d = no_d.as_dict();
    auto cell = d.at("cell").as_dict();
    cell.erase("balance");
    d["cell"] = Value(cell);
    CHECK_THROWS_WITH(cell_limits(Value(d)), "the BMS configuration has no number at cell.balance");
    cell["balance"] = Value::make_dict({{"d", true}});
    d["cell"] = Value(cell);
    CHECK_THROWS_WITH(cell_limits(Value(d)), "the BMS configuration has no number at cell.balance.d");
    CHECK_THROWS_WITH(cell_limits(config_tree(0)), Catch::Contains("cell.balance.d is 0"));
    auto swapped = Value::make_dict({{"cell", Value::make_dict({{"u", Value::make_dict({
                                                  {"lim", Value::make_dict({{"min", 3.4}, {"max", 3.0}})},
                                                  {"ext", Value::make_dict({{"min", 2.9}, {"max", 3.55}})}})},
                                              {"balance", Value::make_dict({{"d", 0.01}})}})}});
    CHECK_THROWS_WITH(cell_limits(swapped), Catch::Contains("out of order"));
}

TEST_CASE("analyze: bms_service names a battery service or nothing", "[inverter][analyze]") {
    CHECK_FALSE(bms_service_problem(""));
    CHECK_FALSE(bms_service_problem("com.victronenergy.battery.batt"));
    CHECK_FALSE(bms_service_problem("com.victronenergy.battery.ttyUSB0"));
    CHECK_FALSE(bms_service_problem("com.victronenergy.battery.moat.bms_1-a"));
    for (const char* bad : {"com.victronenergy.battery.", "com.victronenergy.battery", "com.victronenergy.vebus.x",
                            "com.victronenergy.battery.1x", "com.victronenergy.battery.a..b",
                            "com.victronenergy.battery.a b", "com.victronenergy.battery.x."})
        CHECK_THAT(bms_service_problem(bad).value_or(""), Catch::Contains("is not a battery service name"));
}

// ---------------------------------------------------------------- whole runs

TEST_CASE("analyze: a whole run, from balancing to SetCapacity and p_inv at 0 W", "[inverter][analyze]") {
    AnalyzeRig r;
    r.world.spread = 0.05;       // unbalanced at first: the top must wait for the cells to meet
    r.world.balancing = 0.004;   // V/s while the cells sit at the top
    r.op["excess"] = 200.0;
    double dis_in_step3 = 0;
    r.run(4000s);
    REQUIRE_FALSE(r.failure);
    CHECK(r.world.steps() == std::vector<std::string>{"balance", "balance_hold", "below_top", "charge", "discharge",
                                                      "recharge", "result"});

    // Every waiting step ends on the 4th reading in a row that met its condition.
    for (const char* step : {"balance", "below_top", "charge", "discharge", "recharge"}) {
        auto reps = r.world.reports_of(step);
        REQUIRE(reps.size() >= 4);
        for (int i = 1; i <= 4; ++i) CHECK(num(reps[reps.size() - 5 + i], "n") == i);
        CHECK(text(reps.back().at("done")) == "OK");
    }
    // Balancing waited at the top for the spread to shrink below 3 d.
    auto bal = r.world.reports_of("balance");
    bool waited_for_spread = std::any_of(bal.begin(), bal.end(), [](auto& rep) {
        return rep.count("wait") && text(rep.at("wait")) == "max-min<dest_d";
    });
    CHECK(waited_for_spread);
    CHECK(num(bal.back(), "max") - num(bal.back(), "min") < 0.03);
    // The hold lasted `balance` seconds.
    auto hold = r.world.reports_of("balance_hold");
    CHECK(num(hold.front(), "t") == Approx(10).margin(0.01));
    CHECK(num(hold.back(), "t") <= 0);

    // top_off only while balancing; restored afterwards (the original left it on).
    auto first_below_top = std::find_if(r.world.writes.begin(), r.world.writes.end(), [](auto& w) { return w.total < 0; });
    REQUIRE(first_below_top != r.world.writes.end());
    CHECK(std::all_of(r.world.writes.begin(), first_below_top, [](auto& w) { return w.top_off && w.total > 0; }));
    CHECK(std::none_of(first_below_top, r.world.writes.end(), [](auto& w) { return w.top_off; }));
    CHECK_FALSE(r.ctl.params.top_off);
    // p_chg -1000 W and p_dis 1000 W of inverter power: the Multi takes 1000 W, or gives it.
    for (auto& w : r.world.writes) CHECK(std::abs(w.total) == Approx(1000).margin(1));

    // The counters are cleared before the discharge, read and cleared after it and after the recharge.
    std::vector<std::string> clears;
    for (auto& c : r.world.calls)
        if (c.ends_with("GetWork true true")) clears.push_back(c);
    REQUIRE(clears.size() == 3);
    auto dis = r.world.reports_of("discharge"), rech = r.world.reports_of("recharge");
    auto result = r.world.reports_of("result").at(0);
    dis_in_step3 = num(result, "dis");
    // the discharge step's last progress report is close to what was measured at its end
    CHECK(num(dis.back().at("e").as_dict(), "dis") == Approx(dis_in_step3).epsilon(0.05));
    CHECK(dis_in_step3 > 0.3 / r.world.k);  // ≈ 3.42 → 3.03 V at 2 µV per W·s: ~190 kW·s
    CHECK(num(result, "chg_d") == 0);
    CHECK(num(result, "dis_c") == 0);
    CHECK(num(result, "chg") > dis_in_step3);
    double loss = num(result, "loss");
    CHECK(loss == Approx(1 - dis_in_step3 / (num(result, "chg") + 1)));
    CHECK(loss > 0.0);
    CHECK(loss < 0.1);  // the model loses 5 % charging; the ends of the two steps differ a little
    REQUIRE(r.world.capacities.size() == 1);
    CHECK(std::get<0>(r.world.capacities[0]) == dis_in_step3);
    CHECK(std::get<1>(r.world.capacities[0]) == loss);
    CHECK(std::get<2>(r.world.capacities[0]) == true);
    CHECK(result.at("done") == Value(true));
    CHECK(result.count("error") == 0);

    // Then the supervisor is asked for p_inv at 0 W with the same excess, once.
    REQUIRE(r.world.handovers.size() == 1);
    CHECK(r.world.handovers[0].first == Mode::p_inv);
    CHECK(r.world.handovers[0].second == Op{{"power", 0.0}, {"excess", 200.0}});
    CHECK(text(result.at("next")) == "p_inv");
}

TEST_CASE("analyze: the SoC cutoff does not stop the test, the BMS's discharge limits do", "[inverter][analyze]") {
    // The SoC rests on the capacity analyze measures: a BMS with a wrong one may
    // say 2 % long before the cells are low. The test discharges on until the cells say so.
    AnalyzeRig r;
    r.world.in.soc_percent = 2;
    REQUIRE(low_battery(r.world.in, r.ctl.params));  // below soc_cutoff 0.05 outside analyze
    r.op["balance"] = -1.0;
    r.run(4000s);
    REQUIRE_FALSE(r.failure);
    CHECK(r.world.steps() == std::vector<std::string>{"below_top", "charge", "discharge", "recharge", "result"});
    CHECK(std::any_of(r.world.writes.begin(), r.world.writes.end(), [](auto& w) { return w.total < -900; }));
    CHECK(std::all_of(r.world.writes.begin(), r.world.writes.end(), [](auto& w) { return w.capacity_test; }));
    REQUIRE(r.world.handovers.size() == 1);
    CHECK_FALSE(r.ctl.capacity_test);  // the next mode has the cutoff again

    // The BMS forbidding discharge still clamps every write to charging or 0.
    AnalyzeRig forbidden;
    forbidden.world.in.allow_to_discharge = false;
    forbidden.op["balance"] = -1.0;
    forbidden.run(300s);
    REQUIRE_FALSE(forbidden.world.writes.empty());
    CHECK(std::none_of(forbidden.world.writes.begin(), forbidden.world.writes.end(), [](auto& w) { return w.total < 0; }));
    CHECK(forbidden.world.steps().back() == "discharge");  // and there it stays
    CHECK_FALSE(forbidden.ctl.capacity_test);  // cancelled: restored
}

TEST_CASE("analyze: with use_grid the powers are grid setpoints and p_grid follows", "[inverter][analyze]") {
    AnalyzeRig r;
    r.op = {{"p_chg", 1500.0}, {"p_dis", -700.0}, {"use_grid", 1.0}, {"skip", 2.0}};  // from the charge step
    r.world.u = 3.38;
    r.run(3000s);
    REQUIRE_FALSE(r.failure);
    CHECK(r.world.steps() == std::vector<std::string>{"charge", "discharge", "recharge", "result"});
    // grid import 1500 W (no loads): the Multi charges with 1500; export 700: it inverts 700
    bool charged = false, discharged = false;
    for (auto& w : r.world.writes) {
        charged = charged || std::abs(w.total - 1500) < 1;
        discharged = discharged || std::abs(w.total + 700) < 1;
        CHECK((std::abs(w.total - 1500) < 1 || std::abs(w.total + 700) < 1));
    }
    CHECK(charged);
    CHECK(discharged);
    REQUIRE(r.world.handovers.size() == 1);
    CHECK(r.world.handovers[0].first == Mode::p_grid);
    CHECK(r.world.handovers[0].second == Op{{"power", 0.0}, {"excess", std::nullopt}});
}

TEST_CASE("analyze: scripted readings: a broken streak starts the count again", "[inverter][analyze]") {
    AnalyzeRig r;
    r.op["skip"] = 1.0;  // from below_top
    // above, 3 below, one above again, then below for good
    r.world.script = {{3.3, 3.36}, {3.3, 3.34}, {3.3, 3.34}, {3.3, 3.34}, {3.3, 3.351}, {3.3, 3.34}};
    r.run(200s);
    auto reps = r.world.reports_of("below_top");
    std::vector<double> n;
    for (auto& rep : reps) n.push_back(num(rep, "n"));
    REQUIRE(n.size() >= 9);
    CHECK(std::vector<double>(n.begin(), n.begin() + 9) == std::vector<double>{0, 1, 2, 3, 0, 1, 2, 3, 4});
    CHECK(r.world.steps().at(1) == "charge");
    // a cycle with p_dis per reading that did not end the step: 8
    auto first_charge = std::find_if(r.world.writes.begin(), r.world.writes.end(), [](auto& w) { return w.total > 0; });
    CHECK(std::count_if(r.world.writes.begin(), first_charge, [](auto& w) { return w.total < 0; }) == 8);
}

TEST_CASE("analyze: skipping to the result takes e_dis and e_chg from the parameters", "[inverter][analyze]") {
    AnalyzeRig r;
    r.op = {{"p_dis", 1000.0}, {"skip", 5.0}, {"e_dis", 36000.0}, {"e_chg", 40000.0}};
    r.run(10s);
    REQUIRE_FALSE(r.failure);
    CHECK(r.world.writes.empty());
    // the counters are cleared when the skipping ends (after step 4)
    CHECK(r.world.calls == std::vector<std::string>{"0 GetWork true true", "SetCapacity"});
    REQUIRE(r.world.capacities.size() == 1);
    CHECK(r.world.capacities[0] == std::tuple{36000.0, 1 - 36000.0 / 40001, true});
    CHECK(r.world.handovers.at(0).first == Mode::p_inv);
}

TEST_CASE("analyze: skip 6 sets no capacity, skip 7 ends in off", "[inverter][analyze]") {
    for (double skip : {6.0, 7.0}) {
        AnalyzeRig r;
        r.op = {{"p_dis", 1000.0}, {"skip", skip}, {"e_dis", 36000.0}, {"e_chg", 40000.0}};
        r.run(10s);
        REQUIRE_FALSE(r.failure);
        CHECK(r.world.capacities.empty());
        auto result = r.world.reports_of("result").at(0);
        CHECK(text(result.at("error")) == "Skipped");
        REQUIRE(r.world.handovers.size() == 1);
        if (skip == 6) CHECK(r.world.handovers[0].first == Mode::p_inv);
        else CHECK(r.world.handovers[0] == std::pair{Mode::off, Op{{"power", 0.0}}});
    }
}

TEST_CASE("analyze: more discharged than charged is reported, not sent to the BMS", "[inverter][analyze]") {
    AnalyzeRig r;
    r.op = {{"p_dis", 1000.0}, {"skip", 5.0}, {"e_dis", 50000.0}, {"e_chg", 40000.0}};
    r.run(10s);
    auto result = r.world.reports_of("result").at(0);
    CHECK(text(result.at("test")) == "chg>dis");
    CHECK(num(result, "loss") < 0);
    CHECK(r.world.capacities.empty());
    CHECK(r.world.handovers.at(0).first == Mode::p_inv);
}

TEST_CASE("analyze: a refused SetCapacity is in the result", "[inverter][analyze]") {
    AnalyzeRig r;
    r.op = {{"p_dis", 1000.0}, {"skip", 5.0}, {"e_dis", 36000.0}, {"e_chg", 40000.0}};
    r.world.capacity_answer = false;
    r.run(10s);
    CHECK_THAT(text(r.world.reports_of("result").at(0).at("error")), Catch::StartsWith("the BMS refused SetCapacity("));
}

TEST_CASE("analyze: a wrong p_dis sign ends the mode before anything is written", "[inverter][analyze]") {
    AnalyzeRig r;
    r.op = {{"p_chg", -1000.0}, {"p_dis", -1000.0}};
    r.run(10s);
    REQUIRE(r.failure);
    CHECK_FALSE(r.aborted);  // a plain failure: the supervisor falls back to off at 0 W
    CHECK_THAT(*r.failure, Catch::StartsWith("p_dis has the wrong sign"));
    CHECK(r.world.writes.empty());
    CHECK(r.world.calls.empty());
    REQUIRE(r.world.reports.size() == 1);
    CHECK(text(r.world.reports[0].at("error")) == *r.failure);
}

TEST_CASE("analyze: p_dis changed to the wrong sign while it runs ends it at the next round", "[inverter][analyze]") {
    AnalyzeRig r;
    r.op["skip"] = 1.0;
    r.world.u = 3.45;  // far above below_top's end: it keeps discharging
    auto set_param = [&]() -> Task<void> {
        co_await sleep_for(20s);
        r.op["p_dis"] = -5.0;
    };
    run_for(r.loop, r.clock, 100s, [&]() -> Task<void> {
        auto body = [&](TaskGroup& g) -> Task<void> {
            g.spawn(set_param(), "SetModeParam");
            try {
                auto t = run_analyze(r.ctl, r.world, r.world, timing, r.op);
                co_await t;
            } catch (const std::runtime_error& e) {
                r.failure = e.what();
            }
        };
        co_await with_group(body);
    });
    REQUIRE(r.failure);
    CHECK_THAT(*r.failure, Catch::Contains("must be positive, not -5"));
    CHECK(r.world.writes.back().t < 30);
}

TEST_CASE("analyze: a BMS that goes away ends the mode with ModeAbort; top_off is restored", "[inverter][analyze]") {
    AnalyzeRig r;
    r.world.gone_at = 30;  // during the balance step
    r.run(100s);
    REQUIRE(r.aborted);
    CHECK(*r.failure == "the MoaT BMS went away: com.victronenergy.battery.t left the bus");
    REQUIRE_FALSE(r.world.writes.empty());
    CHECK(r.world.writes.back().top_off);
    CHECK(r.world.writes.back().t < 31);  // nothing written after it went
    CHECK_FALSE(r.ctl.params.top_off);
}

TEST_CASE("analyze: stopped while balancing, top_off is restored", "[inverter][analyze]") {
    AnalyzeRig r;
    r.ctl.params.top_off = false;
    r.run(20s);  // cancelled after 20 s, in step 0
    CHECK_FALSE(r.failure);
    REQUIRE_FALSE(r.world.writes.empty());
    CHECK(r.world.writes.back().top_off);
    CHECK_FALSE(r.ctl.params.top_off);
    // a configured top_off stays on
    AnalyzeRig on;
    on.ctl.params.top_off = true;
    on.run(20s);
    CHECK(on.ctl.params.top_off);
}

TEST_CASE("analyze: a BMS call that fails ends the run with its error", "[inverter][analyze]") {
    struct Failing final : BmsIo {
        Task<CellLimits> limits() override { throw ModeAbort("the MoaT BMS on x: /bms GetConfig failed: Timeout"); }
        Task<CellVoltages> voltages() override { co_return CellVoltages{}; }
        Task<Work> work(bool, bool) override { co_return Work{}; }
        Task<bool> set_capacity(double, double, bool) override { co_return true; }
        Task<std::string> lost() override {
            Event never;
            co_await never.wait();
            co_return std::string();
        }
    } failing;
    AnalyzeRig r;
    run_for(r.loop, r.clock, 10s, [&]() -> Task<void> {
        try {
            auto t = run_analyze(r.ctl, r.world, failing, timing, r.op);
            co_await t;
        } catch (const ModeAbort& e) {
            r.failure = e.what();
        }
    });
    CHECK(r.failure == "the MoaT BMS on x: /bms GetConfig failed: Timeout");
    CHECK(r.world.writes.empty());
}
