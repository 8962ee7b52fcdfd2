// Runs for `after` seconds, then throws. Reports start and safe state, so the
// test sees the safe state run before each restart.
#include "report.hpp"

#include <stdexcept>

namespace {
using namespace moat;

class FailLater final : public Plugin {
public:
    explicit FailLater(Context& ctx) : ctx_(ctx) {}
    Task<void> run() override {
        co_await test_plugins::report(ctx_, "started");
        co_await sleep_for(std::chrono::duration_cast<Duration>(std::chrono::duration<double>(ctx_.config.get_number("after"))));
        throw std::runtime_error("deliberate failure after running a while");
    }
    Task<void> safe_state() override { co_await test_plugins::report(ctx_, "safe"); }

private:
    Context& ctx_;
};

const ConfigKey keys[] = {
    test_plugins::recorder_key,
    {"after", KeyType::number, "0.2", "seconds before the failure", 0.0, 3600},
};
} // namespace

MOAT_PLUGIN(FailLater, "fail_later", "1.0", "test: throws after a while", keys)
