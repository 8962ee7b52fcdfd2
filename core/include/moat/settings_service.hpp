// A settings service of our own: `com.victronenergy.settings` as localsettings
// behaves on the bus, for the demo, the tests,
// the simulation and users without a GX. Plugins talk to whichever settings
// service runs through moat/settings.hpp; they never need this file.
//
//     moat::SettingsService settings(loop, "session", "/data/moat/settings.toml", log);
//     co_await settings.start();   // loads nothing more: the file was read by the constructor
//     ...
//     co_await settings.stop();    // writes pending changes, releases the name
//
// On the bus: every setting is a BusItem object with GetValue,
// GetText, SetValue (Python int()/float()/str() conversion, limits, every
// failure -1), GetMin/GetMax/GetDefault/SetDefault and, on
// com.victronenergy.Settings, GetSilent/GetAttributes. `/`, `/Settings`,
// `/Settings/Devices` and every other group answer GetValue/GetText (relative
// dicts), SetDefault (groups) and the management methods AddSetting,
// AddSilentSetting, AddSettings and RemoveSettings; `/` answers GetItems with
// Default/Min/Max. Changes are announced with PropertiesChanged only, never
// ItemsChanged. /Settings/Devices/<id>/ClassAndVrmInstance allocates device
// instances (the lowest free one >= the wanted one, per class).
//
// Persistence: a TOML file (format below), written atomically (a temporary
// file in the same directory, fsync, rename, fsync of the directory) 2 s after
// the first unsaved change, and at stop()/destruction. A file that cannot be
// read as settings is logged with its name and the reason and renamed to
// `<file>.corrupt-<UTC time>`; the service then starts empty. It is never
// overwritten in place.
//
// File format (TOML because its scalars keep the integer/float distinction a
// setting's type needs, toml++ is already a dependency, and a human can read
// and fix it; its parse errors name line and column):
//
//     format = 1
//     [settings."/Settings/Devices/meter_1/ClassAndVrmInstance"]
//     type = "s"                  # "i" integer, "f" float, "s" string
//     value = "grid:40"
//     default = "grid:40"
//     [settings."/Settings/Demo/Limit"]
//     type = "f"
//     value = 12.5
//     default = 10.0
//     min = 0.0                   # min and max only when the setting has limits
//     max = 100.0
//     silent = true               # only when true
#pragma once

#include "moat/export.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "moat/log.hpp"
#include "moat/loop.hpp"
#include "moat/service.hpp"
#include "moat/settings.hpp"
#include "moat/task.hpp"
#include "moat/value.hpp"

namespace moat {

/// A setting's type: "i", "f" or "s" on the bus.
enum class SettingType { integer, floating, string };
/// "i" → integer, "f" → floating, "s" → string; nullopt for anything else.
MOAT_API std::optional<SettingType> setting_type(std::string_view letter);
MOAT_API const char* type_letter(SettingType type);

/// Result codes of the add methods (localsettings' codes). SetValue and RemoveSettings fail with -1.
namespace settings_code {
inline constexpr int ok = 0;
inline constexpr int failed = -1;  ///< SetValue, SetDefault, RemoveSettings
inline constexpr int underscore_prefix = -2;
inline constexpr int unknown_type = -3;
inline constexpr int invalid_path = -4;
inline constexpr int type_differ = -5;
inline constexpr int invalid_default = -6;
inline constexpr int default_out_of_range = -7;
inline constexpr int is_group = -8;
inline constexpr int not_in_settings = -9;
} // namespace settings_code
/// "NoError", "UnderscorePrefix", ... (for logs); "Failed" for -1.
MOAT_API std::string_view settings_code_name(int code);

/// SetValue's conversion: `v` as Python's int(), float() or str() would give it; nullopt when
/// Python would raise, and for the invalid value.
MOAT_API std::optional<Value> convert_setting(const Value& v, SettingType type);

/// One setting.
struct MOAT_API Setting {
    SettingType type = SettingType::string;
    Value value;
    Value default_value;
    /// The limits; nullopt when unlimited (min = max = 0 when added) and for strings.
    std::optional<Value> min, max;
    bool silent = false;
};

/// Settings by absolute path (`/Settings/...`).
using SettingsMap = std::map<std::string, Setting>;

/// True when `v` lies within the setting's limits (always for strings and unlimited settings).
MOAT_API bool within_limits(const Setting& setting, const Value& v);

/// The lowest instance >= `wanted.instance` that no other ClassAndVrmInstance
/// setting than `path` uses for the same class.
MOAT_API ClassInstance free_class_instance(const SettingsMap& settings, const std::string& path, const ClassInstance& wanted);

/// What an add does to `settings`: the code (settings_code), and with code 0 whether
/// the setting was created or its default/limits/silent flag changed (both
/// announced with {Value, Text, Default, Min, Max}). `path` is absolute and
/// already checked for `/_` and for lying in /Settings; `min`/`max` invalid
/// when not given; `default_value` is converted to `type` (-6 when it cannot
/// be); min = max = 0 means no limits.
struct MOAT_API AddOutcome {
    int code = settings_code::ok;
    bool created = false;
    bool changed = false;
};
MOAT_API AddOutcome add_setting(SettingsMap& settings, const std::string& path, const Value& default_value, SettingType type,
                       const Value& min, const Value& max, bool silent);

/// SetValue on a setting: -1 with nothing to store when the
/// value cannot be converted, is out of range or (ClassAndVrmInstance) is not
/// `class:instance`; otherwise 0 and the value to store (for a
/// ClassAndVrmInstance in use: the next free instance).
MOAT_API WriteResult decide_write(const SettingsMap& settings, const std::string& path, const Value& written);

/// The outcome of reading a settings file.
struct MOAT_API LoadedSettings {
    SettingsMap settings;
    /// Where a corrupt file was moved to (empty when the file was fine or absent).
    std::string kept_aside;
    /// Why it was corrupt ("line 3, column 7: ...").
    std::string problem;
};
/// Read a settings file. A missing file gives no settings. A file that is not
/// valid TOML or not valid settings is renamed to `<file>.corrupt-<UTC
/// yyyymmddThhmmssZ>` and no settings are returned. Throws std::runtime_error
/// (naming the file) when it cannot be read or moved aside: nothing may replace it then.
MOAT_API LoadedSettings load_settings_file(const std::string& file,
                                  std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
/// The text of a settings file holding `settings`.
MOAT_API std::string format_settings_file(const SettingsMap& settings);
/// Write atomically: `<file>.tmp` in the same directory, fsync, rename over
/// `file`, fsync the directory. Throws std::runtime_error naming the file and the reason.
MOAT_API void save_settings_file(const std::string& file, const SettingsMap& settings);

/// The service. Everything runs on the loop; the file is written on the loop
/// too (a few KiB, at most once per save_delay).
class MOAT_API SettingsService {
public:
    /// Debounce of file writes (localsettings waits 2 s too).
    static constexpr Duration save_delay = std::chrono::seconds(2);

    /// Reads `file` (a corrupt one is logged and kept aside, see
    /// load_settings_file) and exports every setting on a connection of its
    /// own on `bus_spec`. The name is requested by start(). An empty `file`
    /// keeps the settings in memory only: nothing is read or written, and
    /// every change is lost when the service ends (the simulation's default).
    SettingsService(Loop& loop, const std::string& bus_spec, std::string file, Logger log,
                    std::string name = settings_service_name);
    /// Writes unsaved changes (errors are logged).
    ~SettingsService();
    SettingsService(const SettingsService&) = delete;
    SettingsService& operator=(const SettingsService&) = delete;

    Task<void> start(Duration timeout = std::chrono::seconds(10));
    /// Writes unsaved changes, then releases the name.
    Task<void> stop(Duration timeout = std::chrono::seconds(5));

    /// Write unsaved changes now. Returns false (and logs, and tries again
    /// after save_delay) when the file cannot be written.
    bool flush();
    bool unsaved() const { return unsaved_; }
    /// Files written so far (for tests).
    std::size_t saves() const { return saves_; }
    const std::string& file() const { return file_; }
    /// Where a corrupt file found at start was moved to ("" when none).
    const std::string& kept_aside() const { return kept_aside_; }

    const SettingsMap& settings() const { return settings_; }
    /// The value at `path`; invalid when there is no such setting.
    Value value(const std::string& path) const;
    /// AddSetting for local callers (the simulation, tests): `path` absolute; a settings_code.
    int add(const std::string& path, const Value& default_value, SettingType type, const Value& min = {},
            const Value& max = {}, bool silent = false);
    /// SetValue for local callers: 0, or -1 (settings_code::failed).
    int set(const std::string& path, const Value& value);

    Service& service() { return *service_; }

private:
    void register_methods();
    void export_setting(const std::string& path);
    ItemOptions options_for(const std::string& path) const;
    void announce_full(const std::string& path);
    int add_from_bus(const std::string& path, const Value& default_value, SettingType type, const Value& min,
                     const Value& max, bool silent, bool on_root);
    int remove(const std::string& path);
    int set_default(const std::string& path);
    void store(const std::string& path, Value v);
    void changed();
    void on_write(const Write& w);

    void handle_add_setting(const std::string& object, sdbus::MethodCall& call, bool silent);
    void handle_add_settings(const std::string& object, sdbus::MethodCall& call);
    void handle_remove_settings(const std::string& object, sdbus::MethodCall& call);

    Loop& loop_;
    std::string file_;
    Logger log_;
    SettingsMap settings_;
    std::string kept_aside_;
    std::unique_ptr<Service> service_;
    bool unsaved_ = false;
    std::size_t saves_ = 0;
    std::size_t new_settings_ = 0;  ///< added this loop turn, for one summary line
    std::string last_new_setting_;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);  ///< for work posted to the loop
    Timer save_timer_;
    bool save_timer_armed_ = false;
};

} // namespace moat
