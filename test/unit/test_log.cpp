#include <catch2/catch.hpp>

#include "moat/log.hpp"

#include <vector>

using namespace moat;

namespace {
struct Capture : LogSink {
    std::vector<std::string> lines;
    void write(LogLevel, std::string_view line) override { lines.emplace_back(line); }
};
} // namespace

TEST_CASE("log lines carry level and instance name, and the level filters", "[log]") {
    auto sink = std::make_shared<Capture>();
    Logger log("grid", sink);
    log.debug("hidden {}", 1);
    log.info("value {}", 42);
    log.child("modbus").warning("slow");
    CHECK(sink->lines == std::vector<std::string>{"INFO [grid] value 42", "WARNING [grid/modbus] slow"});
    sink->level = LogLevel::debug;
    log.debug("shown");
    CHECK(sink->lines.back() == "DEBUG [grid] shown");
}

TEST_CASE("a repeated message is logged once and then summarised", "[log]") {
    auto sink = std::make_shared<Capture>();
    Logger log("meter", sink);
    auto now = std::chrono::steady_clock::time_point{};
    log.set_clock([&] { return now; });
    for (int i = 0; i < 58; ++i) log.error("CRC error from unit {}", 3);
    CHECK(sink->lines == std::vector<std::string>{"ERROR [meter] CRC error from unit 3"});
    log.info("recovered");
    CHECK(sink->lines == std::vector<std::string>{"ERROR [meter] CRC error from unit 3",
                                                  "ERROR [meter] ... repeated 57 times", "INFO [meter] recovered"});
}

TEST_CASE("a message that came twice is logged twice, not summarised", "[log]") {
    auto sink = std::make_shared<Capture>();
    Logger log("inverter", sink);
    log.info("now {}", 0);
    log.info("now {}", 0);
    log.info("SET inverter 0");
    CHECK(sink->lines == std::vector<std::string>{"INFO [inverter] now 0", "INFO [inverter] now 0",
                                                  "INFO [inverter] SET inverter 0"});
}

TEST_CASE("a message that never stops is summarised once per interval", "[log]") {
    auto sink = std::make_shared<Capture>();
    Logger log("meter", sink);
    auto now = std::chrono::steady_clock::time_point{};
    log.set_clock([&] { return now; });
    log.error("timeout");
    for (int i = 0; i < 200; ++i) {
        now += std::chrono::seconds(1);
        log.error("timeout");
    }
    // 200 repeats over 200 s: a summary after 60 s of repeats (61 of them), three times.
    REQUIRE(sink->lines.size() == 4);
    CHECK(sink->lines[1] == "ERROR [meter] ... repeated 61 times");
    log.flush();
    CHECK(sink->lines.back() == "ERROR [meter] ... repeated 17 times");
}

TEST_CASE("log level names parse", "[log]") {
    CHECK(parse_log_level("warn") == LogLevel::warning);
    CHECK(parse_log_level("debug") == LogLevel::debug);
    CHECK_FALSE(parse_log_level("loud"));
}
