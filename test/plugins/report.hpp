// Shared by the test plugins: tell the test what happened, over D-Bus, to a
// recorder service the test runs (org.moat.test.Recorder.Record(s) on /), so
// the test sees that e.g. a safe state really completed a bus round trip.
#pragma once

#include <moat/dbus.hpp>
#include <moat/plugin.hpp>

namespace moat::test_plugins {

inline Task<void> report(Context& ctx, std::string event) {
    std::string to = ctx.config.get_string("recorder");
    if (to.empty()) {
        ctx.log.info("event: {}", event);
        co_return;
    }
    std::vector<Value> args{Value(ctx.instance + ":" + event)};  // (not a braced list inside co_await: g++ 12)
    co_await call_method(ctx.bus, to, "/", "org.moat.test.Recorder", "Record", "s", std::move(args),
                         std::chrono::seconds(2));
    ctx.log.info("reported: {}", event);
}

inline const ConfigKey recorder_key{"recorder", KeyType::string, "\"\"",
                                    "bus name of the test's recorder service; empty = only log"};

} // namespace moat::test_plugins
