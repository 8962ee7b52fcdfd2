// The battery model in virtual time: the safe state for every fault with its
// deadline, trips that latch, blocking by cell, pack, temperature and relay,
// recovery, and the energy record's life.
#include <algorithm>
#include <functional>

#include "test_battery_support.hpp"

using namespace moat::bms::battery;
using namespace moat::bms::battery::test;
using Catch::Detail::Approx;
using Catch::Matchers::Contains;

namespace {

constexpr int N = 16;

int alarm(const Battery& b, Alarm a) { return b.outputs().alarms[std::size_t(a)].value_or(-1); }

int count_lines(std::vector<LogLine> lines, const std::string& part) {
    return int(std::count_if(lines.begin(), lines.end(), [&](const LogLine& l) { return l.text.find(part) != std::string::npos; }));
}

/// A session that reached readiness with fresh data at time `t`.
void start_session(Battery& b, double t, double cell_v = 3.30, double pack_v = 52.8) {
    b.link_up(at(t));
    b.session_started(at(t));
    b.keepalive_sent(at(t));
    b.on_temperatures(at(t), temps(N, 25));
    b.on_pack(at(t), {pack_v, 0, true});
    b.on_cells(at(t), readings(cells(N, cell_v)));
}

/// The plugin's loop in virtual time: periodic readings as scheduled events,
/// plus the model's deadline timer. Runs until `until` and returns the first
/// time the safe state showed (nullopt: never).
struct Driver {
    Battery& b;
    double pack_period = 1.25, cell_period = 2.8, temp_period = 5;
    std::function<bool(double)> pack_alive = [](double) { return true; };
    std::function<std::optional<double>(double, int)> cell_volts = [](double, int) { return std::optional<double>(3.30); };
    double last_fresh_pack = 0, last_fresh_cell = 0;

    std::optional<double> run(double from, double until) {
        double next_pack = from, next_cell = from, next_temp = from, now = from;
        std::optional<double> safe_at;
        for (;;) {
            double t = std::min({next_pack, next_cell, next_temp});
            if (auto d = b.next_deadline(at(now))) {
                double dl = std::chrono::duration<double>(*d - at(0)).count();
                if (dl < t) t = dl;  // the plugin's timer fires first
            }
            if (t > until) break;
            now = t;
            b.tick(at(t));
            if (t == next_pack) {
                if (pack_alive(t)) b.on_pack(at(t), {52.8, 0, true}), last_fresh_pack = t;
                next_pack += pack_period;
            }
            if (t == next_cell) {
                std::vector<CellReading> r(N);
                bool all = true;
                for (int i = 0; i < N; ++i) {
                    r[std::size_t(i)].volts = cell_volts(t, i);
                    all = all && r[std::size_t(i)].volts && *r[std::size_t(i)].volts > 0 && *r[std::size_t(i)].volts < 6;
                }
                b.on_cells(at(t), r);
                if (all) last_fresh_cell = t;
                next_cell += cell_period;
            }
            if (t == next_temp) b.on_temperatures(at(t), temps(N, 25)), next_temp += temp_period;
            if (b.outputs().safe && !safe_at) safe_at = t;
        }
        return safe_at;
    }
};

void check_safe_state(const Battery& b) {
    const Outputs& o = b.outputs();
    CHECK(o.safe);
    CHECK_FALSE(o.allow_charge);
    CHECK_FALSE(o.allow_discharge);
    CHECK(o.max_charge_current == 0);
    CHECK(o.max_discharge_current == 0);
    CHECK_FALSE(o.connected);
    CHECK(o.state == 10);
    CHECK(o.error == 12);
    CHECK_FALSE(o.dc_voltage);
    CHECK_FALSE(o.dc_current);
    CHECK_FALSE(o.dc_power);
    CHECK(alarm(b, Alarm::InternalFailure) == 2);
}

} // namespace

TEST_CASE("before any link the safe state holds") {
    Battery b(bms_cfg(), Options{});
    check_safe_state(b);
    CHECK(b.outputs().reason == SafeReason::no_link);
    CHECK_FALSE(b.next_deadline(at(0)));
}

TEST_CASE("a ready session with fresh data publishes real limits") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    const Outputs& o = b.outputs();
    CHECK_FALSE(o.safe);
    CHECK(b.ready());
    CHECK(o.allow_charge);
    CHECK(o.allow_discharge);
    CHECK(o.max_charge_current == Approx(150));
    CHECK(o.max_discharge_current == Approx(150));
    CHECK(*o.max_charge_voltage == Approx(57.28 * 0.985));
    CHECK(*o.low_voltage == Approx(46.4 * 0.985));
    CHECK(o.connected);
    CHECK(o.state == 9);
    CHECK(o.error == 0);
    CHECK(*o.dc_voltage == Approx(52.8));
    CHECK(*o.dc_current == 0);
    CHECK(*o.temperature == 25);
    CHECK(*o.soc == Approx(0.5));  // seeded at half: 3.30 V is in the plateau
    CHECK(alarm(b, Alarm::InternalFailure) == 0);
    CHECK(b.balancing_allowed());
}

TEST_CASE("link loss: the safe state in the same call, voltage limits stay valid") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    b.link_down(at(1), "EOF");
    check_safe_state(b);
    CHECK(b.outputs().reason == SafeReason::no_link);
    CHECK(b.outputs().max_charge_voltage);  // DVCC keeps treating us as the BMS and applies the zeros
    CHECK(b.outputs().low_voltage);
    CHECK_FALSE(b.balancing_allowed());
    CHECK(count_lines(b.take_log(), "link down (EOF)") == 1);
}

TEST_CASE("stale pack readings: the safe state exactly stale_pack_s after the last one") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    Driver d{b};
    d.pack_alive = [](double t) { return t < 20; };  // the controller stops answering info at 20 s
    auto safe_at = d.run(0, 60);
    REQUIRE(safe_at);
    CHECK(*safe_at - d.last_fresh_pack <= 5.0 + 1e-9);  // the deadline
    CHECK(*safe_at - d.last_fresh_pack >= 5.0 - 1e-9);  // and not before
    check_safe_state(b);
    CHECK(b.outputs().reason == SafeReason::stale_pack);
    // One tick just before the deadline does not trip it.
    Battery c(bms_cfg(), Options{});
    start_session(c, 0);
    c.tick(at(4.999));
    CHECK_FALSE(c.outputs().safe);
    c.tick(at(5.0));
    CHECK(c.outputs().safe);
}

TEST_CASE("stale cells: a silent, missing or invalid cell puts the safe state on within stale_cell_s") {
    struct Fault {
        const char* name;
        std::optional<double> reading;
    };
    Fault faults[] = {{"no reply", std::nullopt}, {"raw 0", 0.0}, {"NaN", std::nan("")}, {"implausible 7 V", 7.0}, {"negative", -1.0}};
    for (const Fault& f : faults) {
        CAPTURE(f.name);
        Battery b(bms_cfg(), Options{});
        start_session(b, 0);
        Driver d{b};
        d.cell_volts = [&](double t, int i) { return t >= 30 && i == 7 ? f.reading : std::optional<double>(3.30); };
        auto safe_at = d.run(0, 80);
        REQUIRE(safe_at);
        CHECK(*safe_at - d.last_fresh_cell <= 15.0 + 1e-9);
        CHECK(*safe_at - d.last_fresh_cell >= 15.0 - 1e-9);
        check_safe_state(b);
        CHECK(b.outputs().reason == SafeReason::stale_cells);
        CHECK_FALSE(b.balancing_allowed());
    }
}

TEST_CASE("a short ring read (a module missing) ages that module") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    for (double t = 2; t < 16; t += 2) {
        b.on_pack(at(t), {52.8, 0, true});
        b.on_cells(at(t), readings(cells(N - 1, 3.30)));  // module 15 never answers
        if (t < 15) CHECK_FALSE(b.outputs().safe);
    }
    b.tick(at(15));
    CHECK(b.outputs().safe);
    CHECK(b.outputs().reason == SafeReason::stale_cells);
}

TEST_CASE("recovery needs a new ready session with fresh data of its own") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    b.link_down(at(1), "RPC timeout");
    b.link_up(at(2));  // the old readings are still "young" but belong to the old session
    CHECK(b.outputs().safe);
    CHECK(b.outputs().reason == SafeReason::session_starting);
    b.session_started(at(2.5));
    b.keepalive_sent(at(2.5));
    b.on_pack(at(2.6), {52.8, 0, true});
    b.on_temperatures(at(2.7), temps(N, 25));
    CHECK(b.outputs().safe);  // no cell reading yet in this session
    b.on_cells(at(3), readings(cells(N, 3.30)));
    CHECK_FALSE(b.outputs().safe);
    auto log = b.take_log();
    CHECK(count_lines(log, "safe state ended") == 2);  // first session and this one
}

TEST_CASE("a cell above hi_set blocks charging only, with hysteresis") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    auto v = cells(N, 3.30);
    v[4] = 3.606;  // 1 mV above hi_set 3.605
    b.on_cells(at(1), readings(v));
    CHECK_FALSE(b.outputs().allow_charge);
    CHECK(b.outputs().max_charge_current == 0);
    CHECK(b.outputs().allow_discharge);
    CHECK(b.outputs().max_discharge_current > 0);
    CHECK(alarm(b, Alarm::HighCellVoltage) == 1);
    CHECK_FALSE(b.take_relay_off_request());
    v[4] = 3.598;  // between hi_clear 3.5967 and hi_set: still blocked
    b.on_cells(at(2), readings(v));
    CHECK_FALSE(b.outputs().allow_charge);
    v[4] = 3.595;
    b.on_cells(at(3), readings(v));
    CHECK(b.outputs().allow_charge);
    CHECK(alarm(b, Alarm::HighCellVoltage) == 0);
}

TEST_CASE("a cell at cell.u.max trips: relay off request every evaluation, latched until ReleaseRelay, one log line") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    b.take_log();
    auto v = cells(N, 3.30);
    v[2] = 3.631;
    b.on_cells(at(2), readings(v));
    CHECK(b.take_relay_off_request());  // within the cell cycle that saw it
    CHECK_FALSE(b.outputs().allow_charge);
    CHECK_FALSE(b.outputs().allow_discharge);
    CHECK(b.outputs().max_charge_current == 0);
    CHECK(b.outputs().max_discharge_current == 0);
    CHECK(alarm(b, Alarm::HighCellVoltage) == 2);
    b.on_pack(at(3), {53.0, 0, false});  // the controller reports the relay off
    b.on_cells(at(4), readings(v));
    CHECK(b.take_relay_off_request());  // re-sent while the condition persists
    CHECK(count_lines(b.take_log(), "trip:") == 1);
    v[2] = 3.30;
    b.on_cells(at(6), readings(v));
    CHECK_FALSE(b.take_relay_off_request());
    CHECK(alarm(b, Alarm::HighCellVoltage) == 2);  // latched
    CHECK_FALSE(b.outputs().allow_discharge);
    b.release_relay(at(7));
    b.on_pack(at(8), {52.8, 0, true});  // the controller re-engaged
    CHECK(alarm(b, Alarm::HighCellVoltage) == 0);
    CHECK(b.outputs().allow_charge);
    CHECK(b.outputs().allow_discharge);
    // A new latch logs again.
    v[2] = 3.64;
    b.on_cells(at(10), readings(v));
    CHECK(count_lines(b.take_log(), "trip:") == 1);
}

TEST_CASE("cell low is the mirror: lo_set blocks discharging, cell.u.min trips") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    auto v = cells(N, 3.10);
    v[0] = 2.799;
    b.on_cells(at(1), readings(v));
    CHECK(b.outputs().allow_charge);
    CHECK_FALSE(b.outputs().allow_discharge);
    CHECK(alarm(b, Alarm::LowCellVoltage) == 1);
    CHECK_FALSE(b.take_relay_off_request());
    v[0] = 2.699;
    b.on_cells(at(2), readings(v));
    CHECK(b.take_relay_off_request());
    CHECK_FALSE(b.outputs().allow_charge);
    CHECK(alarm(b, Alarm::LowCellVoltage) == 2);
}

TEST_CASE("pack limits: the midpoints block one direction, the hard limits trip") {
    // 16 × 3.30: max_voltage 57.28, min 46.40 → umax_p 57.64, umin_p 44.00.
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    b.on_pack(at(1), {57.65, 0, true});
    CHECK_FALSE(b.outputs().allow_charge);
    CHECK(b.outputs().allow_discharge);
    CHECK(alarm(b, Alarm::HighVoltage) == 1);
    CHECK_FALSE(b.take_relay_off_request());
    b.on_pack(at(2), {57.63, 0, true});
    CHECK(b.outputs().allow_charge);
    b.on_pack(at(3), {43.99, 0, true});
    CHECK_FALSE(b.outputs().allow_discharge);
    CHECK(b.outputs().allow_charge);
    CHECK(count_lines(b.take_log(), "no discharging") == 1);  // a log line, never a debugger stop
    b.on_pack(at(4), {58.0, 0, true});
    CHECK(b.take_relay_off_request());
    CHECK(alarm(b, Alarm::HighVoltage) == 2);
    b.release_relay(at(5));
    b.on_pack(at(6), {41.6, 0, true});
    CHECK(b.take_relay_off_request());
    CHECK(alarm(b, Alarm::LowVoltage) == 2);
}

TEST_CASE("temperatures gate charging and discharging, never trip") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    auto t = temps(N, 25);
    t[3].cell_c = 14;  // below 15
    t[9].cell_c = 27;
    b.on_temperatures(at(1), t);
    CHECK(b.outputs().temp_min->cell == 3);
    CHECK(b.outputs().temp_min->celsius == 14);
    CHECK(b.outputs().temp_max->cell == 9);
    CHECK_FALSE(b.outputs().allow_charge);
    CHECK(b.outputs().allow_discharge);
    CHECK(alarm(b, Alarm::LowChargeTemperature) == 1);
    t[3].cell_c = 46;
    b.on_temperatures(at(2), t);
    CHECK_FALSE(b.outputs().allow_charge);
    CHECK(b.outputs().allow_discharge);
    CHECK(alarm(b, Alarm::HighTemperature) == 1);
    t[3].cell_c = 50.1;  // above max + 5
    b.on_temperatures(at(3), t);
    CHECK_FALSE(b.outputs().allow_discharge);
    CHECK(alarm(b, Alarm::HighTemperature) == 2);
    CHECK_FALSE(b.take_relay_off_request());
    // Cells without a value are ignored; none at all: a warning once, no gating.
    std::vector<CellTemperature> none(N);
    b.take_log();
    b.on_temperatures(at(4), none);
    b.on_temperatures(at(4.5), none);
    CHECK(b.outputs().allow_charge);
    CHECK(b.outputs().allow_discharge);
    CHECK(count_lines(b.take_log(), "no cell has a temperature") == 1);
    // enforce_temp = false: no gating.
    Options o;
    o.enforce_temp = false;
    Battery c(bms_cfg(o), o);
    start_session(c, 0);
    t[3].cell_c = 60;
    c.on_temperatures(at(1), t);
    CHECK(c.outputs().allow_charge);
    CHECK(c.outputs().allow_discharge);
}

TEST_CASE("a relay reported off or forced off blocks both directions") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    b.on_pack(at(1), {52.8, 0, false});
    CHECK_FALSE(b.outputs().allow_charge);
    CHECK_FALSE(b.outputs().allow_discharge);
    CHECK_FALSE(b.outputs().safe);  // not a fault of the bridge: values stay valid
    b.on_pack(at(2), {52.8, 0, true});
    CHECK(b.outputs().allow_charge);
    b.force_relay(at(3), false);
    CHECK_FALSE(b.outputs().allow_discharge);
    b.force_relay(at(4), true);
    CHECK(b.outputs().allow_discharge);
    CHECK(count_lines(b.take_log(), "forced on") == 1);
}

TEST_CASE("trips act before readiness while the link is up, never without a link") {
    Battery b(bms_cfg(), Options{});
    b.link_up(at(0));
    auto v = cells(N, 3.30);
    v[0] = 3.64;
    b.on_cells(at(1), readings(v));
    CHECK_FALSE(b.ready());
    CHECK(b.take_relay_off_request());
    b.link_down(at(2), "EOF");
    b.on_cells(at(3), readings(v));  // a late reading after the link went
    CHECK_FALSE(b.take_relay_off_request());
}

TEST_CASE("current alarms: warning beyond the reported limit, alarm beyond the controller's") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    b.on_pack(at(1), {52.8, 151, true});
    CHECK(alarm(b, Alarm::HighChargeCurrent) == 1);
    b.on_pack(at(2), {52.8, 201, true});
    CHECK(alarm(b, Alarm::HighChargeCurrent) == 2);
    b.on_pack(at(3), {52.8, -151, true});
    CHECK(alarm(b, Alarm::HighChargeCurrent) == 0);
    CHECK(alarm(b, Alarm::HighDischargeCurrent) == 1);
    CHECK_FALSE(b.take_relay_off_request());
}

TEST_CASE("an implausible pack reading is ignored and the pack goes stale") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);
    b.on_pack(at(1), {std::nan(""), 0, true});
    b.on_pack(at(2), {1e9, 0, true});
    CHECK_FALSE(b.outputs().safe);
    b.tick(at(5));
    CHECK(b.outputs().safe);
    CHECK(b.outputs().reason == SafeReason::stale_pack);
}

TEST_CASE("energy record: restored when young, seeded otherwise, SetWork and SetCapacity guard their input") {
    BatteryConfig cfg = bms_cfg();
    Battery b(cfg, Options{});
    SavedWork young{WorkRecord{.sum = 40e6, .cfg = cfg.cap_cur}, 1000};
    b.restore_work(young, 1000 + 3600);
    start_session(b, 0);
    CHECK(b.work()->sum == 40e6);
    CHECK(*b.outputs().soc == Approx(0.05 + 0.9 * 0.8));

    Battery old(cfg, Options{});
    old.restore_work(young, 1000 + 3601);
    start_session(old, 0, 3.45);  // all cells above lim.max: full
    CHECK(old.work()->sum == cfg.cap_cur);

    CHECK_FALSE(b.set_work(-1));
    CHECK_FALSE(b.set_work(cfg.cap_cur + 1));
    CHECK(b.set_work(10e6));
    CHECK_FALSE(b.set_capacity(40e6, 1.0, true));
    CHECK_FALSE(b.set_capacity(40e6, -0.1, true));
    CHECK(b.work()->sum == 10e6);  // unchanged by the refused calls
    CHECK(b.set_capacity(40e6, 0.03, true));
    CHECK(b.work()->sum == 40e6);
    CHECK(b.config().cap_cur == 40e6);

    b.on_work(-1e6, 250);
    auto w = b.get_work(true);
    CHECK(w->dis == 1e6);
    CHECK(b.work()->dis == 0);            // counters start over
    CHECK(b.work()->sum == w->sum);       // the energy content does not
}

TEST_CASE("reads and pack polls never move the limit memories, cell cycles decay them in time") {
    Battery b(bms_cfg(), Options{});
    start_session(b, 0);  // 16 × 3.30: max_voltage 57.28
    CHECK(*b.outputs().max_charge_voltage == Approx(57.28 * 0.985));
    auto v = cells(N, 3.30);
    v[0] = 3.45;  // the imbalance lowers the target to 53.08: approached slowly
    b.on_cells(at(2), readings(v));
    double once = *b.outputs().max_charge_voltage;
    CHECK(once == Approx((57.28 + decay_fraction(2, 430) * (53.08 - 57.28)) * 0.985));
    for (int k = 0; k < 1000; ++k) {
        (void)b.outputs();
        b.on_pack(at(2 + 0.001 * k), {52.8, 0, true});  // pack polls do not decay it (2022: 0.1 % each)
    }
    CHECK(*b.outputs().max_charge_voltage == once);
}

TEST_CASE("32 cells: the same limits and deadlines") {
    Value tree = bms_cfg_tree();
    moat::bms::merge_config(tree, Value(Map{{"batt", Map{{"n", 32}}}}));
    Parsed p = parse_battery_config(tree, Options{});
    REQUIRE(p.config);
    Battery b(*p.config, Options{});
    b.link_up(at(0));
    b.session_started(at(0));
    b.keepalive_sent(at(0));
    b.on_temperatures(at(0), temps(32, 25));
    b.on_pack(at(0), {105.6, 0, true});
    b.on_cells(at(0), readings(cells(32, 3.30)));
    CHECK_FALSE(b.outputs().safe);
    CHECK(*b.outputs().max_charge_voltage == Approx(2 * 57.28 * 0.985));
    b.on_pack(at(14), {105.6, 0, true});
    auto v = readings(cells(32, 3.30));
    v[31].volts.reset();
    b.on_cells(at(14), v);
    CHECK(*b.next_deadline(at(14)) == at(15));
    b.tick(at(15));
    CHECK(b.outputs().reason == SafeReason::stale_cells);
}
