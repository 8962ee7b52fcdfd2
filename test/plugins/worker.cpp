// A well-behaved plugin with keys of every type: reports "started", ticks, and
// reports "safe" from its safe state through a real D-Bus round trip.
#include "report.hpp"

namespace {
using namespace moat;

class Worker final : public Plugin {
public:
    explicit Worker(Context& ctx) : ctx_(ctx) {}
    Task<void> run() override {
        co_await test_plugins::report(ctx_, "started " + ctx_.config.get_string("label"));
        // Logged ticks let a test see the loop's own time pass (instead of a sleep of its own).
        const bool log_ticks = ctx_.config.get_bool("log_ticks");
        for (long tick = 1;; ++tick) {
            co_await sleep_for(std::chrono::milliseconds(ctx_.config.get_int("tick_ms")));
            if (log_ticks) ctx_.log.info("tick {}", tick);
        }
    }
    Task<void> safe_state() override { co_await test_plugins::report(ctx_, "safe"); }

private:
    Context& ctx_;
};

const ConfigKey keys[] = {
    test_plugins::recorder_key,
    {"label", KeyType::string, "\"\"", "free text, reported at start"},
    {"tick_ms", KeyType::integer, "100", "tick period", 1, 60000},
    {"gain", KeyType::number, "1.5", "a number with a range", 0.0, 10.0},
    {"mode", KeyType::string, "\"auto\"", "a choice", -no_limit, no_limit, "auto|manual"},
    {"verbose", KeyType::boolean, "false", "a boolean"},
    {"log_ticks", KeyType::boolean, "false", "log every tick (a clock a test can wait for)"},
    {"names", KeyType::string_list, "[]", "a list of strings"},
};
} // namespace

MOAT_PLUGIN(Worker, "worker", "1.0", "test: behaves well", keys)
