// Everything a plugin author needs. A complete plugin:
//
//     #include <moat/plugin.hpp>
//     class Hello final : public moat::Plugin {
//     public:
//         explicit Hello(moat::Context& ctx) : ctx_(ctx) {}
//         moat::Task<void> run() override {
//             for (;;) {
//                 ctx_.log.info("hello");
//                 co_await moat::sleep_for(std::chrono::seconds(ctx_.config.get_int("interval")));
//             }
//         }
//     private:
//         moat::Context& ctx_;
//     };
//     static const moat::ConfigKey keys[] = {
//         {"interval", moat::KeyType::integer, "10", "seconds between greetings", 1, 3600},
//     };
//     MOAT_PLUGIN(Hello, "hello", "1.0", "Says hello", keys)
#pragma once

#include "moat/export.hpp"

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <span>
#include <stdexcept>

#include "moat/bus.hpp"
#include "moat/command.hpp"
#include "moat/config.hpp"
#include "moat/fault.hpp"
#include "moat/log.hpp"
#include "moat/loop.hpp"
#include "moat/monitor.hpp"
#include "moat/sdk_version.hpp"
#include "moat/settings.hpp"
#include "moat/task.hpp"

namespace moat {

/// The layout of the descriptor's fixed prefix (PluginDescriptor below). It
/// changes only if that prefix does; everything else a plugin depends on is
/// covered by the SDK's ABI fingerprint (moat/sdk_version.hpp), which the
/// loader compares before it reads anything past the prefix.
inline constexpr std::uint32_t abi_major = 2;
inline constexpr std::uint32_t abi_minor = 0;

/// What the host gives a plugin instance. Lives as long as the instance.
struct MOAT_API Context {
    Loop& loop;
    Bus& bus;               ///< the host's shared connection (monitoring, calls)
    const Config& config;   ///< this instance's validated configuration
    Logger log;             ///< prefixed with the instance name
    std::string instance;   ///< the instance name (the config table's name)
    /// The bus address spec ("system", "session" or an address) for plugins
    /// that need connections of their own (one per exported Venus service).
    std::string bus_spec;
    /// The process's one monitor of other Venus services (shared by all
    /// plugins; it starts when first used).
    Monitor& monitor;
    /// The process's one client of com.victronenergy.settings (shared by all
    /// plugins, through `monitor`; it starts when first used).
    Settings& settings;
    /// The fault points tests asked to fail (MOAT_FAULT; empty when unset).
    FaultPoints* faults = nullptr;

    /// A named place where a test may make this instance fail (fault.hpp):
    /// throws InjectedFault on the pass MOAT_FAULT asked for, else nothing.
    void fault_point(std::string_view point) const {
        if (faults) faults->pass(instance, point);
    }
};

/// Thrown by safe_state() when the outputs could not all be put in their safe
/// state (a write refused or unanswered, writing not allowed): the message
/// names what is not safe and why. The host logs "safe state NOT reached".
class MOAT_API SafeStateNotReached : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A plugin instance. run() is its main task; the host cancels it to stop the
/// plugin. safe_state() runs after run() ended for any reason (stop, failure,
/// cancellation), shielded and with a deadline: put outputs in a safe state
/// there. It returns only when that state was reached (the host then logs
/// "safe state reached"); otherwise it throws (SafeStateNotReached, or any
/// other error), and never claims what it could not confirm.
class MOAT_API Plugin {
public:
    virtual ~Plugin() = default;
    virtual Task<void> run() = 0;
    virtual Task<void> safe_state() { co_return; }
};

/// The versioned descriptor a plugin exports (written by MOAT_PLUGIN). The
/// first five members are a fixed prefix that never moves: the host reads
/// them first and refuses a plugin built against another SDK ABI before it
/// touches anything else.
struct MOAT_API PluginDescriptor {
    std::uint32_t abi_major;      ///< layout of this prefix (moat::abi_major)
    std::uint32_t abi_minor;
    std::uint32_t size;           ///< sizeof(PluginDescriptor) as the plugin knew it
    const char* sdk_version;      ///< the SDK the plugin was built against ("0.2.0")
    const char* abi_fingerprint;  ///< that SDK's ABI fingerprint (moat/sdk_version.hpp)
    // ---- valid only when the fingerprint matches the host's ----
    const char* kind;
    const char* version;
    const char* description;
    const ConfigKey* keys;
    std::size_t key_count;
    bool restartable;  ///< false: a failed instance stays stopped
    std::unique_ptr<Plugin> (*create)(Context&);
    /// Checks beyond the declared keys (tables, arrays, cross-key rules),
    /// run by --check-config and before every start. Records each problem
    /// with Config::problem / problem_at and goes on, so that every error of
    /// a file is reported at once; throwing ConfigError (Config::fail /
    /// fail_at) ends the check there. Null when the plugin has none.
    void (*validate)(const Config&);
    /// Client commands the plugin brings: `moat-victron <name> ...` loads the
    /// plugin and runs the command (moat/command.hpp).
    const ClientCommand* const* commands;
    std::size_t command_count;
};

/// Name of the one symbol a plugin exports.
inline constexpr const char* plugin_entry_symbol = "moat_plugin_entry";

namespace detail {
inline constexpr std::span<const ConfigKey> no_keys{};
/// A plugin class with `static void validate(const moat::Config&)` gets it
/// called by --check-config and before each start.
template <class P>
constexpr void (*validator_of())(const Config&) {
    if constexpr (requires(const Config& c) { P::validate(c); }) return [](const Config& c) { P::validate(c); };
    else return nullptr;
}
/// A plugin class with `static std::span<const moat::ClientCommand* const>
/// commands()` brings those client commands.
template <class P>
std::span<const ClientCommand* const> commands_of() {
    if constexpr (requires { P::commands(); }) return P::commands();
    else return {};
}
template <class K>
constexpr const ConfigKey* keys_data(const K& k) { return std::data(k); }
template <class K>
constexpr std::size_t keys_size(const K& k) { return std::size(k); }
} // namespace detail

} // namespace moat

/// Write the plugin's entry symbol. KEYS is an array of moat::ConfigKey (or
/// moat::detail::no_keys). The fifth argument is optional: restartable (default true).
#define MOAT_PLUGIN(PluginClass, KIND, VERSION, DESCRIPTION, KEYS, ...)                                     \
    extern "C" __attribute__((visibility("default"))) const ::moat::PluginDescriptor* moat_plugin_entry() {  \
        static const auto commands = ::moat::detail::commands_of<PluginClass>();                             \
        static const ::moat::PluginDescriptor descriptor{                                                    \
            ::moat::abi_major,                                                                               \
            ::moat::abi_minor,                                                                               \
            sizeof(::moat::PluginDescriptor),                                                                \
            ::moat::sdk_version,                                                                             \
            ::moat::abi_fingerprint,                                                                         \
            KIND,                                                                                            \
            VERSION,                                                                                         \
            DESCRIPTION,                                                                                     \
            ::moat::detail::keys_data(KEYS),                                                                 \
            ::moat::detail::keys_size(KEYS),                                                                 \
            MOAT_PLUGIN_RESTARTABLE_(__VA_ARGS__),                                                           \
            [](::moat::Context& ctx) -> std::unique_ptr<::moat::Plugin> {                                    \
                return std::make_unique<PluginClass>(ctx);                                                   \
            },                                                                                               \
            ::moat::detail::validator_of<PluginClass>(),                                                     \
            commands.data(),                                                                                 \
            commands.size()};                                                                                \
        return &descriptor;                                                                                  \
    }
#define MOAT_PLUGIN_RESTARTABLE_(...) MOAT_PLUGIN_RESTARTABLE_I_(__VA_ARGS__ __VA_OPT__(, ) true, )
#define MOAT_PLUGIN_RESTARTABLE_I_(value, ...) value
