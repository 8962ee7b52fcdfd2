// The meters plugin: one instance per Modbus bus (a serial port or a TCP
// peer). Each meter found on it is published as a Venus energy meter,
// com.victronenergy.<role>.cg_<serial>, with the tree of meters.md §5 on a
// connection of its own. README.md lists the keys.
#include "device_settings.hpp"
#include "link.hpp"
#include "reader.hpp"
#include "simulator.hpp"

#include <moat/plugin.hpp>
#include <moat/service.hpp>

#include <fmt/format.h>

#include <algorithm>

namespace {

using namespace std::chrono;
using namespace moat;
using namespace moat::meters;

constexpr const char* version = "1.0";
// §5: the roles the original drivers allowed, and those with a /Position.
const std::vector<std::string> allowed_roles = {"grid", "pvinverter", "genset", "acload"};
bool allowed_role(const std::string& role)
{
    return std::find(allowed_roles.begin(), allowed_roles.end(), role) != allowed_roles.end();
}

Duration seconds_of(double s) { return duration_cast<Duration>(duration<double>(s)); }

struct DeviceSpec {
    std::uint8_t unit;
    std::optional<MeterKind> kind;
};

/// How a device's run ended, when it did not fail.
enum class Outcome { reinit };

std::string unit_text(const Register& reg)
{
    switch (reg.quantity) {
    case Quantity::voltage: return "%.1F V";
    case Quantity::current: return "%.2F A";
    case Quantity::power: return "%.0F W";
    case Quantity::frequency: return "%.2F Hz";
    case Quantity::energy: return "%.2F kWh";
    case Quantity::none: break;
    }
    return "";
}

TextFormatter label_text(const Register& reg)
{
    return [reg](const Value& v) {
        if (auto l = label(reg, v)) return std::string(*l);
        return text(v);
    };
}

class Meters final : public Plugin {
public:
    explicit Meters(Context& ctx)
        : ctx_(ctx), log_(ctx.log), specs_(device_specs(ctx.config)), settings_(ctx.settings, ctx.bus, ctx.log)
    {
        const auto& c = ctx_.config;
        tcp_ = c.get_string("bus") == "tcp";
        poll_ = seconds_of(c.get_number("poll_interval"));
        fail_timeout_ = seconds_of(c.get_number("fail_timeout"));
        reprobe_ = seconds_of(c.get_number("reprobe_interval"));
        default_role_ = c.get_string("role");
    }

    /// The whole configuration, nested tables included (--check-config and
    /// before each start): the constructor reads it with the same code.
    static void validate(const Config& c)
    {
        device_specs(c);
        if (c.get_string("bus") == "rtu") c.claim("device", "the serial device " + c.get_string("device"));
    }

    Task<void> run() override
    {
        const auto& c = ctx_.config;
        if (tcp_) {
            link_ = std::make_unique<TcpLink>(ctx_.loop, c.get_string("host"), std::uint16_t(c.get_int("port")), log_);
        } else {
            const std::string parity = c.get_string("parity");
            link_ = std::make_unique<RtuLink>(
                ctx_.loop,
                RtuOptions{.device = c.get_string("device"), .baud = int(c.get_int("baud")),
                              .parity = parity == "even" ? 'E' : parity == "odd" ? 'O' : 'N',
                              .stop_bits = int(c.get_int("stop_bits"))},
                log_);
        }
        log_.info("{}: {} device(s) to look for", link_->describe(), specs_.size());
        auto body = [this](TaskGroup& g) -> Task<void> {
            for (const auto& spec : specs_) g.spawn(device_loop(spec), fmt::format("{}/unit{}", ctx_.instance, spec.unit));
            co_return;
        };
        co_await with_group(body);
    }

private:
    /// The devices to look for, from `devices` or else `units`; throws one
    /// ConfigError naming every wrong entry's line.
    static std::vector<DeviceSpec> device_specs(const Config& c)
    {
        const bool tcp = c.get_string("bus") == "tcp";
        if (tcp && c.get_string("host").empty()) c.problem("host", "a TCP bus needs the meter's (or gateway's) address");
        if (!tcp && c.get_string("device").empty()) c.problem("device", "an RTU bus needs the serial port, e.g. \"/dev/ttyUSB0\"");
        std::vector<DeviceSpec> specs;
        auto add = [&](DeviceSpec s, const ConfigNode& at, const char* key) {
            if (std::any_of(specs.begin(), specs.end(), [&](const DeviceSpec& o) { return o.unit == s.unit; }))
                c.problem_at(at, fmt::format("key '{}'", key), fmt::format("unit {} is given twice", s.unit));
            specs.push_back(s);
        };
        const ConfigNode devices = c.node("devices");
        const bool by_device = devices.kind() == ConfigNode::Kind::array && devices.size() > 0;
        for (std::size_t i = 0; by_device && i < devices.size(); ++i) {
            const ConfigNode d = devices.at(i);
            if (d.kind() != ConfigNode::Kind::table) {
                c.problem_at(d, "key 'devices'", "each device is a table {unit = 1, type = \"sdm630v2\"}");
                continue;
            }
            bool ok = true;
            for (const auto& k : d.keys())
                if (k != "unit" && k != "type") {
                    c.problem_at(d.get(k), "key 'devices'", fmt::format("unknown key '{}' in a device (unit, type)", k));
                    ok = false;
                }
            auto unit = d.get("unit").as_int();
            const ConfigNode type_node = d.get("type");
            if (!unit || *unit < 1 || *unit > 247) {
                c.problem_at(d, "key 'devices'", "each device needs a unit of 1..247");
                ok = false;
            }
            std::optional<MeterKind> kind;
            if (type_node) {
                auto type = type_node.as_string();
                if (type) kind = sim::kind_from_name(*type);
                if (!kind) {
                    c.problem_at(type_node, "key 'devices'",
                                 fmt::format("unknown meter type {} (abb_b2x, em24rtu, sdm120, sdm630v1, sdm630v2, "
                                             "sdm72dv2)", type ? "'" + *type + "'" : std::string("(not a string)")));
                    ok = false;
                }
            }
            if (ok) add({std::uint8_t(*unit), kind}, d, "devices");
        }
        if (!by_device) {
            const ConfigNode units = c.node("units");
            if (units.kind() != ConfigNode::Kind::array) c.problem("units", "a list of unit ids");
            for (std::size_t i = 0; i < units.size(); ++i) {
                const ConfigNode u = units.at(i);
                auto n = u.as_int();
                if (!n || *n < 1 || *n > 247) c.problem_at(u, "key 'units'", "unit ids are integers 1..247");
                else add({std::uint8_t(*n), std::nullopt}, u, "units");
            }
            if (specs.empty() && c.problems().empty()) c.problem("units", "no unit to probe");
        }
        c.throw_problems();
        return specs;
    }

    std::string connection(std::uint8_t unit) const
    {
        const auto& c = ctx_.config;
        if (tcp_) return fmt::format("Modbus TCP {}", c.get_string("host"));
        std::string dev = c.get_string("device");
        if (auto slash = dev.rfind('/'); slash != std::string::npos) dev = dev.substr(slash + 1);
        return fmt::format("Modbus RTU {}:{}", dev, unit);
    }

    /// Probe, bring up, publish, poll; after a failure wait and start over (§7.4).
    Task<void> device_loop(DeviceSpec spec)
    {
        auto log = log_.child(fmt::format("unit{}", spec.unit));
        MeterReader reader(*link_, spec.unit, log);
        bool reinit = false;
        for (;;) {
            try {
                auto id = co_await reader.probe(spec.kind);
                if (!id) throw std::runtime_error(spec.kind ? "the configured meter does not answer as expected"
                                                            : "no supported meter answers");
                if (!reinit) log.info("found {} ({})", id->type->product_name, id->model);
                MeterSetup setup = co_await reader.init(*id);
                reinit = false;
                co_await publish(reader, setup, spec, log);
                reinit = true;  // publish() returns for a re-initialisation
                continue;
            } catch (const Cancelled&) {
                throw;
            } catch (const LinkError& e) {
                // A serial port that went away (unplugged adapter): fail the
                // plugin, the host restarts it with back-off and reopens the port.
                if (link_->lost()) throw;
                log.warning("{}", e.what());
            } catch (const std::exception& e) {
                log.warning("{}; trying again in {:.0f} s", e.what(), duration<double>(reprobe_).count());
            }
            reinit = false;
            co_await sleep_for(reprobe_);
        }
    }

    struct Published {
        std::unique_ptr<Service> svc;
        std::map<std::string, Item*> data;
    };

    Published make_service(const MeterSetup& setup, const DeviceSettings& s, std::uint8_t unit, const Logger& log)
    {
        const MeterType& type = *setup.id.type;
        const std::string name = fmt::format("com.victronenergy.{}.{}", s.role, setup.identity.ident);
        Published p;
        p.svc = std::make_unique<Service>(ctx_.loop, name, ctx_.bus_spec, log);
        Service& svc = *p.svc;
        auto info = [&](const std::string& path) {
            auto it = setup.info.find(path);
            return it == setup.info.end() ? Value() : it->second;
        };
        svc.add("/Mgmt/ProcessName", "moat-victron/meters");
        svc.add("/Mgmt/ProcessVersion", version);
        svc.add("/Mgmt/Connection", connection(unit));
        svc.add("/DeviceInstance", s.instance);
        svc.add("/ProductId", std::int64_t(type.product_id));
        svc.add("/ProductName", std::string(type.product_name));
        svc.add("/Model", std::string(setup.id.model));
        svc.add("/Connected", 1);
        svc.add("/Serial", setup.identity.serial);
        // Identification registers: with their texts, writable where the register is.
        for (const Register& reg : info_registers(type)) {
            if (!reg.published() || reg.path == "/Serial") continue;
            ItemOptions o;
            if (!reg.labels.empty()) o.text(label_text(reg));
            if (reg.writable) o.writeable().type(ValueType::integer).range(reg.writable->min, reg.writable->max);
            svc.add(reg.path, info(reg.path), std::move(o));
        }
        svc.add("/CustomName", s.custom_name, ItemOptions().writeable().type(ValueType::string));
        Value::List roles;
        for (const auto& r : allowed_roles) roles.emplace_back(r);
        svc.add("/AllowedRoles", Value(std::move(roles)));
        // (validate::one_of compares numbers only)
        auto is_role = [](const Value& v) { return v.is_string() && allowed_role(v.as_string()); };
        svc.add("/Role", s.role, ItemOptions().writeable().type(ValueType::string).validator(is_role));
        if (has_position(s.role))
            svc.add("/Position", s.position,
                    ItemOptions().writeable().type(ValueType::integer).range(0, 2).text(
                        format::table({{0, "AC input 1"}, {1, "AC output"}, {2, "AC input 2"}})));
        svc.add("/NrOfPhases", std::int64_t(setup.phases));
        if (s.role != "grid") svc.add("/IsGenericEnergyMeter", 1);
        for (const Block& b : setup.blocks)
            for (const Register& reg : b.registers) {
                ItemOptions o;
                if (auto t = unit_text(reg); !t.empty()) o.text(t);
                p.data[reg.path] = &svc.add(reg.path, Value(), std::move(o));
            }
        return p;
    }

    /// Publish the meter until it fails (throws) or needs a re-init (returns).
    Task<void> publish(MeterReader& reader, MeterSetup& setup, DeviceSpec spec, Logger& log)
    {
        const std::string& ident = setup.identity.ident;
        auto opening = settings_.open(ident, setup.identity.legacy_ident, default_role_);
        DeviceSettings s = co_await opening;
        if (!allowed_role(s.role)) {
            log.warning("{} holds the class '{}', not a meter role: publishing as {}", class_instance_path(ident),
                        s.role, default_role_);
            s.role = default_role_;
        }
        // Changes made by others (the GUI) or by us: compared with `s` after each poll.
        bool settings_changed = false;
        auto watch = settings_.watch(ident, [&settings_changed] { settings_changed = true; });
        auto last_ok = ctx_.loop.clock().now();
        for (;;) {  // one round per service name (a role change starts another)
            Published p = make_service(setup, s, spec.unit, log);
            // First values before the name appears, so consumers never see an empty meter.
            auto first = co_await reader.update(setup, ctx_.loop.clock().now());
            for (auto& [path, v] : first.values)
                if (auto it = p.data.find(path); it != p.data.end()) it->second->set(v);
            if (first.ok) last_ok = ctx_.loop.clock().now();
            co_await p.svc->start();
            log.info("published as {} (instance {})", p.svc->name(), s.instance);
            auto writes = p.svc->writes();
            bool recreate = false;
            while (!recreate) {
                co_await sleep_for(poll_);
                const auto now = ctx_.loop.clock().now();
                Update u = co_await reader.update(setup, now);
                if (u.ok) last_ok = now;
                {
                    auto batch = p.svc->batch();
                    for (auto& [path, v] : u.values)
                        if (auto it = p.data.find(path); it != p.data.end()) it->second->set(v);
                }
                if (settings_changed) {
                    settings_changed = false;
                    auto followed = follow_settings(ident, s, p, log);
                    recreate = co_await followed;
                }
                if (ctx_.loop.clock().now() - last_ok > fail_timeout_) {
                    co_await p.svc->stop();
                    throw std::runtime_error(fmt::format("{}: no successful read for {:.0f} s, removed from the bus",
                                                         p.svc->name(), duration<double>(fail_timeout_).count()));
                }
                while (writes.pending()) {
                    Write w = co_await writes.next();
                    if (w.path == "/Role") {
                        if (w.value.as_string() == s.role) continue;
                        auto setting = settings_.set_role(ident, w.value.as_string());
                        s = co_await setting;
                        log.info("role {} → {}: re-publishing", w.old_value, w.value);
                        recreate = true;
                    } else if (w.path == "/CustomName") {
                        auto setting = settings_.set_custom_name(ident, w.value.as_string());
                        if (co_await setting == 0) s.custom_name = w.value.as_string();
                        else p.svc->set(w.path, w.old_value);
                    } else if (w.path == "/Position") {
                        auto setting = settings_.set_position(ident, w.value.as_int());
                        if (co_await setting == 0) s.position = w.value.as_int();
                        else p.svc->set(w.path, w.old_value);
                    } else {
                        // An identification register (PhaseConfig, the EM24's model code): write it, re-initialise.
                        for (const Register& reg : info_registers(*setup.id.type)) {
                            if (reg.path != w.path) continue;
                            try {
                                co_await reader.write(reg, w.value);
                                log.info("{} = {} written to the meter: re-initialising", w.path, w.value);
                            } catch (const std::exception& e) {
                                log.warning("writing {} = {}: {}", w.path, w.value, e.what());
                                p.svc->set(w.path, w.old_value);
                                break;
                            }
                            if (reg.reinit_on_write) {
                                co_await p.svc->stop();
                                co_return;
                            }
                        }
                    }
                }
            }
            co_await p.svc->stop();
        }
    }

    /// Apply what the settings service holds now to `s` and the service;
    /// true when the class changed (the service must be re-created, §8.5).
    Task<bool> follow_settings(const std::string& ident, DeviceSettings& s, Published& p, Logger& log)
    {
        DeviceSettings now = settings_.current(ident);
        if (now.role != s.role) {
            if (allowed_role(now.role)) {
                log.info("{} changed the role {} → {}: re-publishing", class_instance_path(ident), s.role, now.role);
                auto setting = settings_.set_role(ident, now.role);  // adds Position where needed
                s = co_await setting;
                co_return true;
            }
            log.warning("{} holds the class '{}', not a meter role: ignored", class_instance_path(ident), now.role);
        }
        if (now.instance != s.instance) {
            log.info("device instance {} → {}", s.instance, now.instance);
            s.instance = now.instance;
            p.svc->set("/DeviceInstance", now.instance);
        }
        if (now.custom_name != s.custom_name) {
            s.custom_name = now.custom_name;
            p.svc->set("/CustomName", now.custom_name);
        }
        if (has_position(s.role) && now.position != s.position) {
            s.position = now.position;
            p.svc->set("/Position", now.position);
        }
        co_return false;
    }

    Context& ctx_;
    Logger log_;
    std::vector<DeviceSpec> specs_;
    bool tcp_ = false;
    Duration poll_{}, fail_timeout_{}, reprobe_{};
    std::string default_role_;
    std::unique_ptr<Link> link_;
    DeviceSettingsStore settings_;
};

const ConfigKey keys[] = {
    {"bus", KeyType::string, nullptr, "the Modbus transport: rtu (a serial port) or tcp", -no_limit, no_limit, "rtu|tcp"},
    {"device", KeyType::string, "\"\"", "rtu: the serial port, e.g. /dev/ttyUSB0"},
    {"baud", KeyType::integer, "9600", "rtu: baud rate", 1200, 230400},
    {"parity", KeyType::string, "\"none\"", "rtu: parity (8 data bits always)", -no_limit, no_limit, "none|even|odd"},
    {"stop_bits", KeyType::integer, "1", "rtu: stop bits", 1, 2},
    {"host", KeyType::string, "\"\"", "tcp: numeric IP address of the meter or gateway"},
    {"port", KeyType::integer, "502", "tcp: port", 1, 65535},
    {"units", KeyType::array, "[1]", "unit ids to probe for any supported meter"},
    {"devices", KeyType::array, "[]",
     "instead of units: [{unit = 1, type = \"sdm630v2\"}, ...]; type is checked, not probed (abb_b2x, em24rtu, sdm120, "
     "sdm630v1, sdm630v2, sdm72dv2)"},
    {"poll_interval", KeyType::number, "0.25", "seconds between updates (blocks are read when due: powers 1 s, rest 4 s)",
     0.02, 60},
    {"fail_timeout", KeyType::number, "5.0", "seconds without a successful read before a meter leaves the bus", 0.5, 600},
    {"reprobe_interval", KeyType::number, "10.0", "seconds between probes of a missing or failed meter", 0.1, 3600},
    {"role", KeyType::string, "\"grid\"", "role of a newly found meter (ClassAndVrmInstance default)", -no_limit, no_limit,
     "grid|pvinverter|genset|acload"},
};

} // namespace

MOAT_PLUGIN(Meters, "meters", version, "Modbus RTU/TCP energy meters (Eastron, ABB, Carlo Gavazzi) as Venus meters", keys)
