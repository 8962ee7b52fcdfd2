// The constructor (the factory) throws.
#include <moat/plugin.hpp>

#include <stdexcept>

namespace {
using namespace moat;

class FactoryThrows final : public Plugin {
public:
    explicit FactoryThrows(Context&) { throw std::runtime_error("deliberate failure in the constructor"); }
    Task<void> run() override { co_return; }
};
} // namespace

MOAT_PLUGIN(FactoryThrows, "factory_throws", "1.0", "test: its factory throws", moat::detail::no_keys)
