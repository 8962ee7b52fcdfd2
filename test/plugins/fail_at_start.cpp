// run() throws at once; not restartable, so it must stay stopped.
#include "report.hpp"

#include <stdexcept>

namespace {
using namespace moat;

class FailAtStart final : public Plugin {
public:
    explicit FailAtStart(Context& ctx) : ctx_(ctx) {}
    Task<void> run() override {
        throw std::runtime_error("deliberate failure at start");
        co_return;
    }
    Task<void> safe_state() override { co_await test_plugins::report(ctx_, "safe"); }

private:
    Context& ctx_;
};

const ConfigKey keys[] = {test_plugins::recorder_key};
} // namespace

MOAT_PLUGIN(FailAtStart, "fail_at_start", "1.0", "test: throws at start, not restartable", keys, false)
