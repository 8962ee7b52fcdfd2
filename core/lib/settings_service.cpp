// com.victronenergy.settings on D-Bus (venus-dbus.md §11), built on moat::Service:
#include "value_dbus.hpp"
// every setting is an Item whose SetValue follows decide_write(); the
// management methods are extra methods of `/` and the group nodes.
#include "moat/settings_service.hpp"

#include "sdbus_access.hpp"

namespace moat {

namespace {

using Dict = std::map<std::string, sdbus::Variant>;

constexpr const char* error_invalid_args = "org.freedesktop.DBus.Error.InvalidArgs";

/// The arguments of a management method in whatever form they came: the
/// declared one, or plain types where it declares variants (velib's
/// SettingsDevice and systemcalc send `ssssii`, `ssbsii`, ... without an
/// interface; localsettings takes them). Bad arguments are an InvalidArgs reply.
std::vector<Value> arguments(sdbus::MethodCall& call, std::string_view usage) {
    try {
        return detail::read_arguments(call);
    } catch (const std::invalid_argument& e) {
        throw sdbus::Error(error_invalid_args, fmt::format("{} takes {}: {}", call.getMemberName(), usage, e.what()));
    }
}

[[noreturn]] void bad_arguments(sdbus::MethodCall& call, std::string_view usage) {
    throw sdbus::Error(error_invalid_args, fmt::format("{} takes {}, got signature '{}'", call.getMemberName(), usage,
                                                       detail::body_signature(call)));
}

template <class... A>
void reply(sdbus::MethodCall& call, const A&... a) {
    if (call.doesntExpectReply()) return;
    auto r = call.createReply();
    ((void)(r << a), ...);
    r.send();
}

/// object + "/" + parts, with repeated and trailing slashes dropped
/// ("leading slashes tolerated", §11.2).
std::string join(const std::string& object, std::initializer_list<std::string_view> parts) {
    std::string raw = object;
    for (auto p : parts) (raw += '/') += p;
    std::string out;
    for (char c : raw)
        if (!(c == '/' && !out.empty() && out.back() == '/')) out += c;
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    return out;
}

bool valid_path(const std::string& p) {
    if (p.size() < 2 || p.front() != '/') return false;
    for (char c : p)
        if (!(c == '/' || c == '_' || std::isalnum(static_cast<unsigned char>(c)))) return false;
    return true;
}

Value decoded(const sdbus::Variant& v) {
    try {
        return from_variant(v);
    } catch (const std::invalid_argument&) {
        return Value();  // a struct or the like: no usable value
    }
}

/// GetMin/GetMax: the limit, or i 0 when unlimited.
Value limit_or_zero(const std::optional<Value>& v) { return v ? *v : Value(0); }

} // namespace

SettingsService::SettingsService(Loop& loop, const std::string& bus_spec, std::string file, Logger log, std::string name)
    : loop_(loop), file_(std::move(file)), log_(std::move(log)) {
    LoadedSettings loaded = file_.empty() ? LoadedSettings{} : load_settings_file(file_);
    if (!loaded.kept_aside.empty())
        log_.error("the settings file {} is corrupt ({}); kept it as {} and starting without settings", file_,
                   loaded.problem, loaded.kept_aside);
    settings_ = std::move(loaded.settings);
    kept_aside_ = std::move(loaded.kept_aside);
    service_ = std::make_unique<Service>(loop_, std::move(name), bus_spec, log_);
    service_->set_device(false);
    // Settings outlive us: leaving must not announce them as gone.
    service_->set_invalidate_on_stop(false);
    register_methods();
    service_->pin_node("/Settings/Devices");  // and /Settings: the groups clients call first
    for (const auto& [path, s] : settings_) export_setting(path);
    service_->on_write([this](const Write& w) { on_write(w); });
    if (file_.empty())
        log_.info("settings kept in memory only (no file): changes are lost when the service stops");
    else
        log_.info("{} settings from {}", settings_.size(), file_);
}

SettingsService::~SettingsService() {
    if (unsaved_) flush();
}

Task<void> SettingsService::start(Duration timeout) { co_await service_->start(timeout); }

Task<void> SettingsService::stop(Duration timeout) {
    if (unsaved_) flush();
    co_await service_->stop(timeout);
}

// ---- persistence ---------------------------------------------------------

void SettingsService::changed() {
    if (file_.empty()) return;  // in memory only: nothing is ever unsaved
    unsaved_ = true;
    if (!save_timer_armed_) {
        save_timer_armed_ = true;
        save_timer_ = Timer(loop_.clock(), loop_.clock().now() + save_delay, [this] {
            save_timer_armed_ = false;
            flush();
        });
    }
}

bool SettingsService::flush() {
    save_timer_.reset();
    save_timer_armed_ = false;
    if (file_.empty()) return true;  // in memory only
    try {
        save_settings_file(file_, settings_);
        unsaved_ = false;
        ++saves_;
        log_.debug("wrote {} settings to {}", settings_.size(), file_);
        return true;
    } catch (const std::exception& e) {
        log_.error("cannot save the settings: {}; trying again in {} s", e.what(),
                   std::chrono::duration_cast<std::chrono::seconds>(save_delay).count());
        changed();
        return false;
    }
}

// ---- the objects -----------------------------------------------------------

ItemOptions SettingsService::options_for(const std::string& path) const {
    const Setting& s = settings_.at(path);
    ItemOptions o;
    o.writeable().default_value(s.default_value).write_policy([this](const Item& item, const Value& v) {
        return decide_write(settings_, item.path(), v);
    });
    if (s.min) o.min(*s.min);
    if (s.max) o.max(*s.max);
    return o;
}

void SettingsService::export_setting(const std::string& path) {
    service_->add(path, settings_.at(path).value, options_for(path));
}

void SettingsService::announce_full(const std::string& path) {
    const Setting& s = settings_.at(path);
    Item& item = service_->at(path);
    Value::Dict entries{{"Value", item.value()}, {"Text", item.text()}, {"Default", s.default_value}};
    if (s.type != SettingType::string) {
        entries.emplace("Min", limit_or_zero(s.min));
        entries.emplace("Max", limit_or_zero(s.max));
    }
    item.announce(entries);
}

void SettingsService::register_methods() {
    Service& svc = *service_;
    const unsigned groups = on_root | on_nodes;
    svc.add_method(groups, settings_interface, "AddSetting", "ssvsvv", "i",
                   [this](const std::string& p, sdbus::MethodCall& c) { handle_add_setting(p, c, false); });
    svc.add_method(groups, settings_interface, "AddSilentSetting", "ssvsvv", "i",
                   [this](const std::string& p, sdbus::MethodCall& c) { handle_add_setting(p, c, true); });
    svc.add_method(groups, settings_interface, "AddSettings", "aa{sv}", "aa{sv}",
                   [this](const std::string& p, sdbus::MethodCall& c) { handle_add_settings(p, c); });
    svc.add_method(groups, settings_interface, "RemoveSettings", "as", "ai",
                   [this](const std::string& p, sdbus::MethodCall& c) { handle_remove_settings(p, c); });
    // §11.3: unlimited reads as i 0 (also for floats), no default as i -1.
    svc.add_method(on_items, busitem_interface, "GetMin", "", "v", [this](const std::string& p, sdbus::MethodCall& c) {
        reply(c, to_variant(limit_or_zero(settings_.at(p).min)));
    });
    svc.add_method(on_items, busitem_interface, "GetMax", "", "v", [this](const std::string& p, sdbus::MethodCall& c) {
        reply(c, to_variant(limit_or_zero(settings_.at(p).max)));
    });
    svc.add_method(on_items, busitem_interface, "GetDefault", "", "v", [this](const std::string& p, sdbus::MethodCall& c) {
        reply(c, to_variant(settings_.at(p).default_value));
    });
    svc.add_method(on_items | on_nodes, busitem_interface, "SetDefault", "", "i",
                   [this](const std::string& p, sdbus::MethodCall& c) { reply(c, std::int32_t(set_default(p))); });
    svc.add_method(on_items, settings_interface, "GetSilent", "", "b", [this](const std::string& p, sdbus::MethodCall& c) {
        reply(c, settings_.at(p).silent);
    });
    svc.add_method(on_items, settings_interface, "GetAttributes", "", "vvvi",
                   [this](const std::string& p, sdbus::MethodCall& c) {
                       const Setting& s = settings_.at(p);
                       reply(c, to_variant(s.default_value), to_variant(limit_or_zero(s.min)),
                             to_variant(limit_or_zero(s.max)), std::int32_t(s.silent ? 1 : 0));
                   });
}

// ---- adding, writing, removing ---------------------------------------------

int SettingsService::add_from_bus(const std::string& path, const Value& default_value, SettingType type,
                                  const Value& min, const Value& max, bool silent, bool on_root) {
    using namespace settings_code;
    if (path.find("/_") != std::string::npos) return underscore_prefix;
    if (on_root && !path.starts_with("/Settings/")) return not_in_settings;
    if (!valid_path(path) || !path.starts_with("/Settings/")) return invalid_path;
    if (service_->is_node(path)) return is_group;
    AddOutcome outcome = add_setting(settings_, path, default_value, type, min, max, silent);
    if (outcome.code != ok) {
        log_.debug("adding {} failed: {} ({})", path, outcome.code, settings_code_name(outcome.code));
        return outcome.code;
    }
    if (outcome.created) {
        export_setting(path);
        announce_full(path);
        // Each at debug; one line at info per burst (a client adds dozens at its start).
        log_.debug("new setting {} = {:r} (type {}{})", path, settings_.at(path).value, type_letter(type),
                   silent ? ", silent" : "");
        if (new_settings_++ == 0)
            loop_.post([this, alive = std::weak_ptr<int>(alive_)] {
                if (alive.expired()) return;
                if (new_settings_ == 1) log_.info("new setting {}", last_new_setting_);
                else log_.info("{} new settings (the list at log level debug)", new_settings_);
                new_settings_ = 0;
            });
        last_new_setting_ = path;
        changed();
    } else if (outcome.changed) {
        service_->at(path).set_options(options_for(path));
        announce_full(path);
        log_.info("setting {}: default, limits or silent flag changed", path);
        changed();
    }
    return ok;
}

int SettingsService::add(const std::string& path, const Value& default_value, SettingType type, const Value& min,
                         const Value& max, bool silent) {
    return add_from_bus(path, default_value, type, min, max, silent, true);
}

void SettingsService::store(const std::string& path, Value v) {
    Item& item = service_->at(path);
    if (v == item.value()) return;  // §2.3: nothing, the stored type stays
    item.set(v);                    // PropertiesChanged {Value, Text}
    Setting& s = settings_.at(path);
    if (s.silent) log_.debug("{} set to {:r}", path, v);
    else log_.info("{} set to {:r}", path, v);
    s.value = std::move(v);
    changed();
}

int SettingsService::set(const std::string& path, const Value& value) {
    WriteResult r = decide_write(settings_, path, value);
    if (r.store) store(path, std::move(*r.store));
    return r.code;
}

void SettingsService::on_write(const Write& w) {
    // The Service stored and announced it; the setting follows.
    if (auto it = settings_.find(w.path); it != settings_.end()) {
        it->second.value = w.value;
        changed();
    }
}

int SettingsService::set_default(const std::string& path) {
    std::vector<std::string> targets;
    if (settings_.count(path)) targets.push_back(path);
    else
        for (auto it = settings_.lower_bound(path + "/"); it != settings_.end() && it->first.starts_with(path + "/"); ++it)
            targets.push_back(it->first);
    for (const auto& p : targets) {
        // A ClassAndVrmInstance default goes through the allocation like a write.
        WriteResult r = decide_write(settings_, p, settings_.at(p).default_value);
        if (r.store) store(p, std::move(*r.store));
    }
    return settings_code::ok;
}

int SettingsService::remove(const std::string& path) {
    auto it = settings_.find(path);
    if (it == settings_.end()) return settings_code::failed;
    // §11.2: announced as {Value: invalid, Text: ""} (not "---"), then gone.
    service_->at(path).announce({{"Value", Value()}, {"Text", ""}});
    service_->remove(path);
    settings_.erase(it);
    log_.info("removed setting {}", path);
    changed();
    return settings_code::ok;
}

Value SettingsService::value(const std::string& path) const {
    auto it = settings_.find(path);
    return it == settings_.end() ? Value() : it->second.value;
}

// ---- the management methods --------------------------------------------------

void SettingsService::handle_add_setting(const std::string& object, sdbus::MethodCall& call, bool silent) {
    constexpr std::string_view usage = "(s group, s name, default, s type, min, max)";
    const auto args = arguments(call, usage);
    if (args.size() != 6 || !args[0].is_string() || !args[1].is_string() || !args[3].is_string())
        bad_arguments(call, usage);
    const std::string path = join(object, {args[0].as_string(), args[1].as_string()});
    int code;
    if (auto type = setting_type(args[3].as_string()))
        code = add_from_bus(path, args[2], *type, args[4], args[5], silent, object == "/");
    else code = settings_code::unknown_type;
    reply(call, std::int32_t(code));
}

void SettingsService::handle_add_settings(const std::string& object, sdbus::MethodCall& call) {
    constexpr std::string_view usage = "one array of dicts (aa{sv})";
    // Each entry decoded, with the D-Bus types of its path and default: the
    // default's type selects the setting's (§11.2).
    struct Entry {
        Value::Dict values;
        std::string path_type, default_type;
    };
    std::vector<Entry> entries;
    if (detail::body_signature(call) == "aa{sv}") {
        std::vector<Dict> raw;
        call >> raw;
        for (const auto& d : raw) {
            Entry e;
            for (const auto& [k, v] : d) {
                e.values.emplace(k, decoded(v));
                if (k == "path") e.path_type = v.peekValueType();
                if (k == "default") e.default_type = v.peekValueType();
            }
            entries.push_back(std::move(e));
        }
    } else {
        // Plain dicts (a{ss}, a{si}, ...): the types are those of the decoded values.
        const auto args = arguments(call, usage);
        if (args.size() != 1 || !(args[0].is_invalid() || args[0].is_list())) bad_arguments(call, usage);
        auto type_of = [](const Value& v) -> std::string {
            if (v.is_int()) return "x";
            if (v.is_double()) return "d";
            if (v.is_string()) return "s";
            return v.is_bool() ? "b" : "";
        };
        if (args[0].is_list())
            for (const auto& item : args[0].as_list()) {
                if (!item.is_dict()) bad_arguments(call, usage);
                Entry e{item.as_dict(), "", ""};
                if (auto p = e.values.find("path"); p != e.values.end()) e.path_type = type_of(p->second);
                if (auto d = e.values.find("default"); d != e.values.end()) e.default_type = type_of(d->second);
                entries.push_back(std::move(e));
            }
    }
    std::vector<Dict> results;
    for (const auto& entry : entries) {
        Dict result;
        int code = settings_code::ok;
        std::string path;
        auto get = [&](const char* key) {
            auto it = entry.values.find(key);
            return it == entry.values.end() ? Value() : it->second;
        };
        if (auto p = entry.values.find("path"); p != entry.values.end()) result.emplace("path", to_variant(p->second));
        if (entry.path_type != "s") code = settings_code::invalid_path;
        else {
            path = join(object, {get("path").as_string()});
            const std::string& sig = entry.default_type;
            std::optional<SettingType> type;
            if (sig == "i" || sig == "x") type = SettingType::integer;
            else if (sig == "d") type = SettingType::floating;
            else if (sig == "s") type = SettingType::string;
            if (!type) code = settings_code::unknown_type;
            else {
                Value silent = get("silent");
                code = add_from_bus(path, get("default"), *type, get("min"), get("max"),
                                    silent.is_number() && *silent.as_number() != 0, object == "/");
            }
        }
        result.emplace("error", sdbus::Variant(std::int32_t(code)));
        if (code == settings_code::ok) result.emplace("value", to_variant(settings_.at(path).value));
        results.push_back(std::move(result));
    }
    reply(call, results);
}

void SettingsService::handle_remove_settings(const std::string& object, sdbus::MethodCall& call) {
    constexpr std::string_view usage = "one array of paths (as)";
    const auto args = arguments(call, usage);
    // An empty array arrives as invalid; a lone string is taken as one path.
    if (args.size() != 1) bad_arguments(call, usage);
    std::vector<std::string> paths;
    if (args[0].is_string()) paths.push_back(args[0].as_string());
    else if (args[0].is_list())
        for (const auto& p : args[0].as_list()) {
            if (!p.is_string()) bad_arguments(call, usage);
            paths.push_back(p.as_string());
        }
    else if (args[0].is_valid()) bad_arguments(call, usage);
    std::vector<std::int32_t> codes;
    for (const auto& p : paths) codes.push_back(std::int32_t(remove(join(object, {p}))));
    reply(call, codes);
}

} // namespace moat
