// Installed as wrong_kind.so but declares another kind.
#include <moat/plugin.hpp>

namespace {
class Nothing final : public moat::Plugin {
public:
    explicit Nothing(moat::Context&) {}
    moat::Task<void> run() override { co_return; }
};
} // namespace

MOAT_PLUGIN(Nothing, "something_else", "1.0", "test: kind does not match the file", moat::detail::no_keys)
