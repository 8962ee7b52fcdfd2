// Energy record and SoC: the worked SoC values, add_work's loss and clamps,
// the SoC getter changing nothing, seeding, the state file.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <unistd.h>

#include "test_battery_support.hpp"

using namespace moat::bms::battery;
using namespace moat::bms::battery::test;
using Catch::Detail::Approx;

TEST_CASE("SoC of the worked examples") {
    BatteryConfig c = bms_cfg();
    WorkRecord w{.sum = 25e6, .cfg = c.cap_cur};
    CHECK(soc(w, c, 3.30) == Approx(0.5));
    CHECK(soc(w, c, 2.95) == Approx(0.025));
    CHECK(soc(w, c, 3.45) == Approx(0.963889).margin(1e-6));
    CHECK(soc(w, c, 2.80) == 0);  // below ext.min: 0, never negative
    CHECK(soc(w, c, 3.60) == 1);
}

TEST_CASE("the SoC getter does not change the record") {
    BatteryConfig c = bms_cfg();
    WorkRecord w{.sum = 60e6, .cfg = c.cap_cur};  // above cap
    WorkRecord before = w;
    CHECK(soc(w, c, 3.30) == Approx(0.95));  // reads as full, clamps nothing
    CHECK(w == before);
}

TEST_CASE("add_work: the loss applies to charge only, dis counts positive") {
    BatteryConfig c = bms_cfg();  // loss 0.02
    WorkRecord w{.sum = 10e6, .cfg = c.cap_cur};
    add_work(w, c, 1e6, 250, 3.30);
    CHECK(w.chg == 1e6);
    CHECK(w.sum == Approx(10e6 + 0.98e6));
    add_work(w, c, -2e6, 250, 3.30);
    CHECK(w.dis == 2e6);
    CHECK(w.sum == Approx(10e6 + 0.98e6 - 2e6));
    CHECK(w.t == 500);
}

TEST_CASE("add_work clamps at both ends of the model") {
    BatteryConfig c = bms_cfg();
    WorkRecord w{.sum = 1e6, .cfg = c.cap_cur};
    add_work(w, c, -3e6, 10, 3.30);  // below 0 in the plateau
    CHECK(w.sum == 0);
    CHECK(w.over_dis == Approx(2e6));
    w = WorkRecord{.sum = 49e6, .cfg = c.cap_cur};
    add_work(w, c, 2e6, 10, 3.30);  // above cap
    CHECK(w.sum == c.cap_cur);
    CHECK(w.over_chg == Approx(49e6 + 1.96e6 - 50e6));
    w = WorkRecord{.sum = 20e6, .cfg = c.cap_cur};
    add_work(w, c, 0, 10, 2.95);  // lowest cell below lim.min: empty
    CHECK(w.sum == 0);
    CHECK(w.over_dis == Approx(-20e6));
    w = WorkRecord{.sum = 20e6, .cfg = c.cap_cur};
    add_work(w, c, 0, 10, 3.45);  // every cell above lim.max: full
    CHECK(w.sum == c.cap_cur);
    CHECK(w.over_chg == Approx(-30e6));
}

TEST_CASE("seeding from the cell zones") {
    BatteryConfig c = bms_cfg();
    CHECK(seed_work(c, 2.95).record.sum == 0);
    CHECK(seed_work(c, 2.95).anchored);
    CHECK(seed_work(c, 3.45).record.sum == c.cap_cur);
    Seed mid = seed_work(c, 3.30);
    CHECK(mid.record.sum == c.cap_cur / 2);
    CHECK_FALSE(mid.anchored);
    CHECK(soc(mid.record, c, 3.30) == Approx(0.5));  // not the 5 % that trips the inverter's SoC cutoff
}

TEST_CASE("the state file: round trip, corrupt text refused, atomic write") {
    WorkRecord w{.sum = 12345678.5, .t = 3600, .chg = 1e6, .dis = 2e6, .over_chg = -5, .over_dis = 7, .cfg = 5e7};
    std::string text = serialize_work(w, 1.7e9);
    auto back = parse_work(text);
    REQUIRE(back);
    CHECK(back->record == w);
    CHECK(back->saved_unix_s == 1.7e9);
    for (std::string bad : {std::string(""), std::string("moat-bms-work 2 1 2 3 4 5 6 7 8"), text.substr(0, text.size() / 2),
                            std::string("moat-bms-work 1 1 nan 3 4 5 6 7 8"), std::string("moat-bms-work 1 1 -2 3 4 5 6 7 8"),
                            text + " extra", std::string("garbage\n")}) {
        CAPTURE(bad);
        CHECK_FALSE(parse_work(bad));
    }
    auto dir = std::filesystem::temp_directory_path() / ("moat-bms-work-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    auto path = (dir / "batt.work").string();
    CHECK(write_file_atomically(path, text).empty());
    std::ifstream in(path);
    std::stringstream got;
    got << in.rdbuf();
    CHECK(got.str() == text);
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));
    CHECK_FALSE(write_file_atomically((dir / "missing" / "x").string(), text).empty());  // an error, not a crash
    std::filesystem::remove_all(dir);
}
