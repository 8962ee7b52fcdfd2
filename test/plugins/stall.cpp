// Blocks the loop (a synchronous sleep) after `after` seconds: the watchdog must fire.
#include <moat/plugin.hpp>

#include <unistd.h>

namespace {
using namespace moat;

class Stall final : public Plugin {
public:
    explicit Stall(Context& ctx) : ctx_(ctx) {}
    Task<void> run() override {
        co_await sleep_for(std::chrono::duration_cast<Duration>(std::chrono::duration<double>(ctx_.config.get_number("after"))));
        ctx_.log.info("blocking the loop now");
        ::sleep(unsigned(ctx_.config.get_int("block_seconds")));
        ctx_.log.info("unblocked");
    }

private:
    Context& ctx_;
};

const ConfigKey keys[] = {
    {"after", KeyType::number, "0.2", "seconds before blocking", 0.0, 3600},
    {"block_seconds", KeyType::integer, "10", "how long to block", 1, 3600},
};
} // namespace

MOAT_PLUGIN(Stall, "stall", "1.0", "test: blocks the loop", keys)
