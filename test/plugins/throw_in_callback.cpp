// After `after` seconds, posts a function (where = "post") or schedules a
// timer callback (where = "timer") that throws. The host must fail this
// instance only: safe state, then a restart. Reports start and safe state.
#include "report.hpp"

#include <stdexcept>

namespace {
using namespace moat;

class ThrowInCallback final : public Plugin {
public:
    explicit ThrowInCallback(Context& ctx) : ctx_(ctx) {}
    Task<void> run() override {
        co_await test_plugins::report(ctx_, "started");
        co_await sleep_for(std::chrono::duration_cast<Duration>(std::chrono::duration<double>(ctx_.config.get_number("after"))));
        auto boom = [] { throw std::runtime_error("deliberate failure in a callback"); };
        if (ctx_.config.get_string("where") == "post") ctx_.loop.post(boom);
        else timer_ = Timer(ctx_.loop.clock(), ctx_.loop.clock().now(), boom);
        Event never;
        co_await never.wait();
    }
    Task<void> safe_state() override { co_await test_plugins::report(ctx_, "safe"); }

private:
    Context& ctx_;
    Timer timer_;
};

const ConfigKey keys[] = {
    test_plugins::recorder_key,
    {"where", KeyType::string, "\"post\"", "post: a posted function throws; timer: a timer callback", -no_limit,
     no_limit, "post|timer"},
    {"after", KeyType::number, "0.1", "seconds before the failure", 0.0, 3600},
};
} // namespace

MOAT_PLUGIN(ThrowInCallback, "throw_in_callback", "1.0", "test: a callback of its own throws", keys)
