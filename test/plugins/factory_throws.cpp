// The constructor (the factory) throws: a plain error (retried), or with
// `config_error = true` a ConfigError that only the constructor finds (never
// retried); with `validate_throws = true` its validate() has a bug.
#include <moat/plugin.hpp>

#include <stdexcept>

namespace {
using namespace moat;

class FactoryThrows final : public Plugin {
public:
    explicit FactoryThrows(Context& ctx) {
        if (ctx.config.get_bool("config_error")) ctx.config.fail("config_error", "deliberate configuration error");
        throw std::runtime_error("deliberate failure in the constructor");
    }
    /// With `validate_throws = true`, a bug in the plugin's own check.
    static void validate(const Config& c) {
        if (c.get_bool("validate_throws")) throw std::logic_error("deliberate bug in validate()");
    }
    Task<void> run() override { co_return; }
};

const ConfigKey keys[] = {
    {"config_error", KeyType::boolean, "false", "throw a ConfigError instead of a runtime error"},
    {"validate_throws", KeyType::boolean, "false", "validate() throws std::logic_error"},
};
} // namespace

MOAT_PLUGIN(FactoryThrows, "factory_throws", "1.0", "test: its factory throws", keys)
