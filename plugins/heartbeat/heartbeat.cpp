// heartbeat: proves the host, the loop and the bus are alive. Every `interval`
// seconds it asks the bus daemon for the list of names (a real round trip)
// and logs how many there are and how long the answer took.
#include <moat/dbus.hpp>
#include <moat/plugin.hpp>

namespace {

using namespace std::chrono;

class Heartbeat final : public moat::Plugin {
public:
    explicit Heartbeat(moat::Context& ctx) : ctx_(ctx) {}

    moat::Task<void> run() override {
        const auto interval = duration_cast<moat::Duration>(duration<double>(ctx_.config.get_number("interval")));
        for (unsigned beat = 1;; ++beat) {
            auto start = ctx_.loop.clock().now();
            auto reply = co_await moat::call_method(ctx_.bus, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                                    "org.freedesktop.DBus", "ListNames", "", {}, seconds(5));
            const std::size_t names = reply.empty() || !reply[0].is_list() ? 0 : reply[0].as_list().size();
            auto took = duration<double, std::milli>(ctx_.loop.clock().now() - start).count();
            ctx_.log.info("beat {}: {} names on the bus, round trip {:.2f} ms", beat, names, took);
            co_await moat::sleep_for(interval);
        }
    }

private:
    moat::Context& ctx_;
};

const moat::ConfigKey keys[] = {
    {"interval", moat::KeyType::number, "10.0", "seconds between beats", 0.05, 86400},
};

} // namespace

MOAT_PLUGIN(Heartbeat, "heartbeat", "1.0", "Logs a heartbeat with a D-Bus round trip (shows the host is alive)", keys)
