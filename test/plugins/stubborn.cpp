// Its safe state never finishes: the host's stop deadline must end it. With
// ignore_cancel it even swallows the cancellation and blocks the stop, so the
// host's backstop must exit (code 6).
#include "report.hpp"

namespace {
using namespace moat;

class Stubborn final : public Plugin {
public:
    explicit Stubborn(Context& ctx) : ctx_(ctx) {}
    Task<void> run() override {
        co_await test_plugins::report(ctx_, "started");
        for (;;) co_await sleep_for(std::chrono::hours(1));
    }
    Task<void> safe_state() override {
        co_await test_plugins::report(ctx_, "in safe state");  // lets a test act while it hangs here
        for (;;) {
            try {
                co_await sleep_for(std::chrono::hours(1));
            } catch (const Cancelled&) {
                if (!ctx_.config.get_bool("ignore_cancel")) throw;
                ctx_.log.info("safe state cancelled: ignoring it and blocking");  // the test's cue
            }
            if (ctx_.config.get_bool("ignore_cancel")) ::usleep(100000);  // blocks, never yields again
        }
    }

private:
    Context& ctx_;
};

const ConfigKey keys[] = {
    test_plugins::recorder_key,
    {"ignore_cancel", KeyType::boolean, "false", "swallow the cancellation of the safe state"},
};
} // namespace

MOAT_PLUGIN(Stubborn, "stubborn", "1.0", "test: safe state never finishes", keys)
