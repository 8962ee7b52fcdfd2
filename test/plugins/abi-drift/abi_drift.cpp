// A plain plugin, compiled against a changed copy of the SDK headers (see
// test/plugins/CMakeLists.txt): its Context has one member more, as a plugin
// built against another SDK would see it. The loader must refuse it.
#include <moat/plugin.hpp>

namespace {
class Drift final : public moat::Plugin {
public:
    explicit Drift(moat::Context& ctx) : ctx_(ctx) {}
    moat::Task<void> run() override {
        ctx_.log.info("this must never run: {}", ctx_.added_by_another_sdk != nullptr);
        co_return;
    }

private:
    moat::Context& ctx_;
};
} // namespace

MOAT_PLUGIN(Drift, "abi_drift", "1.0", "test: built against another SDK ABI", moat::detail::no_keys)
