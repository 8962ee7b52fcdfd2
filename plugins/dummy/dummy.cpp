// dummy: publishes one Venus service whose name, mandatory paths and items
// come from the configuration, optionally with values that change by
// themselves. Emulates a device (a fake grid meter, a battery) on a real GX
// or on a test bus, so other software can be tried against it. See README.md.
#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <random>
#include <set>

#include <moat/plugin.hpp>
#include <moat/service.hpp>

namespace {

using namespace std::chrono;

enum class ChangeMode { none, increment, random };

struct ItemSpec {
    std::size_t index = 0;  ///< 1-based position in `items`, for messages
    std::string path;
    moat::ValueType type = moat::ValueType::floating;
    moat::Value value;
    bool writeable = false;
    std::optional<double> min, max;
    std::string text;  ///< printf format incl. unit; empty = default text
    ChangeMode change = ChangeMode::none;
    double step = 1.0;
    double period = 1.0;
};

constexpr const char* mandatory_paths[] = {"/Mgmt/ProcessName", "/Mgmt/ProcessVersion", "/Mgmt/Connection",
                                           "/DeviceInstance", "/ProductId", "/ProductName",
                                           "/FirmwareVersion", "/HardwareVersion", "/Connected"};

bool valid_object_path(const std::string& p) {
    if (p.size() < 2 || p[0] != '/' || p.back() == '/') return false;
    for (std::size_t i = 1; i < p.size(); ++i) {
        char c = p[i];
        if (c == '/' && p[i - 1] == '/') return false;
        if (c != '/' && c != '_' && !std::isalnum(static_cast<unsigned char>(c))) return false;
    }
    return true;
}

/// Reads and checks the `items` array; every problem is a ConfigError that
/// names the file, the line of `items`, the item's number and its key.
class ItemReader {
public:
    explicit ItemReader(const moat::Config& cfg) : cfg_(cfg) {}
    ItemReader(const ItemReader&) = delete;

    std::vector<ItemSpec> read() {
        std::vector<ItemSpec> out;
        const moat::ConfigNode arr = cfg_.node("items");
        if (arr.kind() != moat::ConfigNode::Kind::array) cfg_.fail("items", "expected an array of tables ([[<instance>.items]])");
        std::set<std::string> seen;
        for (std::size_t i = 0; i < arr.size(); ++i) nodes_.push_back(arr.at(i));
        // Each item on its own: every wrong item is reported, not only the first.
        for (std::size_t i = 0; i < arr.size(); ++i) {
            try {
                ItemSpec s = item(i + 1, arr.at(i));
                if (!seen.insert(s.path).second) fail(s.index, "path", "'" + s.path + "' is given twice");
                out.push_back(std::move(s));
            } catch (const moat::ConfigError& e) {
                cfg_.problem(e);
            }
        }
        cfg_.throw_problems();
        // A path may not be both an item and a node of other items (§4).
        for (const auto& a : seen) {
            auto next = seen.upper_bound(a);
            if (next != seen.end() && next->rfind(a + "/", 0) == 0) {
                auto it = std::find_if(out.begin(), out.end(), [&](const ItemSpec& s) { return s.path == *next; });
                fail(it->index, "path", "'" + *next + "' lies below the item '" + a + "'");
            }
        }
        return out;
    }

private:
    // Errors name the line of the item itself.
    [[noreturn]] void fail(std::size_t index, std::string_view key, const std::string& reason) const {
        cfg_.fail_at(nodes_.at(index - 1), "key 'items'", fmt::format("item {}: '{}': {}", index, key, reason));
    }

    ItemSpec item(std::size_t index, const moat::ConfigNode& t) {
        if (t.kind() != moat::ConfigNode::Kind::table)
            cfg_.fail_at(t, "key 'items'", fmt::format("item {}: expected a table, got {}", index, t.type_name()));
        static const std::set<std::string, std::less<>> known = {"path", "type", "value", "writeable", "min",
                                                                  "max", "format", "unit", "change"};
        for (const auto& k : t.keys())
            if (!known.count(k))
                fail(index, k, "unknown key (an item knows: path, type, value, writeable, min, max, format, unit, change)");

        ItemSpec s;
        s.index = index;
        auto path = t.get("path").as_string();
        if (!path) fail(index, "path", t.contains("path") ? "expected a string" : "missing (every item needs its path)");
        s.path = *path;
        if (!valid_object_path(s.path))
            fail(index, "path", "'" + s.path + "' is not a D-Bus object path (/A/B_1: letters, digits, '_')");
        for (const char* m : mandatory_paths)
            if (s.path == m) fail(index, "path", "'" + s.path + "' is a mandatory path: set it with the instance's keys");

        // Type: given, or from the value.
        const moat::ConfigNode value = t.get("value");
        using Kind = moat::ConfigNode::Kind;
        if (auto ty = t.get("type").as_string()) {
            if (*ty == "int") s.type = moat::ValueType::integer;
            else if (*ty == "float") s.type = moat::ValueType::floating;
            else if (*ty == "string") s.type = moat::ValueType::string;
            else fail(index, "type", "'" + *ty + "' is not one of int|float|string");
        } else if (t.contains("type")) {
            fail(index, "type", "expected a string (int|float|string)");
        } else if (value.kind() == Kind::integer) {
            s.type = moat::ValueType::integer;
        } else if (value.kind() == Kind::string) {
            s.type = moat::ValueType::string;
        } else if (!value || value.kind() == Kind::floating) {
            s.type = moat::ValueType::floating;
        }
        const bool number = s.type != moat::ValueType::string;

        if (value) {
            if (s.type == moat::ValueType::integer && value.as_int()) s.value = moat::Value(*value.as_int());
            else if (s.type == moat::ValueType::floating && value.is_number()) s.value = moat::Value(*value.as_number());
            else if (s.type == moat::ValueType::string && value.as_string()) s.value = moat::Value(*value.as_string());
            else fail(index, "value", fmt::format("{} does not fit type {}", value.type_name(),
                                                  s.type == moat::ValueType::integer ? "int" : number ? "float" : "string"));
        }  // no value: the item starts invalid

        if (auto w = t.get("writeable")) {
            if (!w.as_bool()) fail(index, "writeable", "expected a boolean, got " + w.type_name());
            s.writeable = *w.as_bool();
        }
        for (const char* key : {"min", "max"}) {
            const moat::ConfigNode n = t.get(key);
            if (!n) continue;
            if (!number) fail(index, key, "only numeric items have a range");
            if (!n.is_number()) fail(index, key, "expected a number, got " + n.type_name());
            double d = *n.as_number();
            (std::string_view(key) == "min" ? s.min : s.max) = d;
        }
        if (s.min && s.max && *s.min > *s.max) fail(index, "min", fmt::format("min {} is above max {}", *s.min, *s.max));
        if (auto v = s.value.as_number()) {
            if ((s.min && *v < *s.min) || (s.max && *v > *s.max))
                fail(index, "value", fmt::format("{} is outside [{}, {}]", *v, s.min ? fmt::format("{}", *s.min) : "-inf",
                                                 s.max ? fmt::format("{}", *s.max) : "inf"));
        }

        // Text: format and unit ("%.1f" + "A" → "%.1f A").
        std::string format, unit;
        if (auto f = t.get("format")) {
            if (!f.as_string()) fail(index, "format", "expected a string, got " + f.type_name());
            if (!number) fail(index, "format", "string items show themselves; format is for numbers");
            format = *f.as_string();
        }
        if (auto u = t.get("unit")) {
            if (!u.as_string()) fail(index, "unit", "expected a string, got " + u.type_name());
            if (!number) fail(index, "unit", "string items have no unit");
            unit = *u.as_string();
        }
        if (!unit.empty() && format.empty()) format = s.type == moat::ValueType::integer ? "%d" : "%.2f";
        if (!format.empty()) {
            std::string escaped;
            for (char c : unit) escaped += c == '%' ? "%%" : std::string(1, c);
            s.text = unit.empty() ? format : format + " " + escaped;
            try {
                (void)moat::format::printf(s.text);
            } catch (const std::exception& e) {
                fail(index, "format", fmt::format("'{}' is not a usable printf format: {}", format, e.what()));
            }
        }

        if (auto c = t.get("change")) change(s, c);
        return s;
    }

    void change(ItemSpec& s, const moat::ConfigNode& c) {
        if (c.kind() != moat::ConfigNode::Kind::table) fail(s.index, "change", "expected a table { mode = \"increment\"|\"random\", step = ..., period = ... }");
        if (s.type == moat::ValueType::string) fail(s.index, "change", "only numeric items change by themselves");
        if (!s.value.is_valid()) fail(s.index, "change", "a changing item needs an initial value");
        for (const auto& k : c.keys())
            if (k != "mode" && k != "step" && k != "period")
                fail(s.index, "change." + k, "unknown key (change knows: mode, step, period)");
        auto mode = c.get("mode").as_string();
        if (!mode) fail(s.index, "change.mode", "missing or not a string (increment|random)");
        if (*mode == "increment") s.change = ChangeMode::increment;
        else if (*mode == "random") s.change = ChangeMode::random;
        else fail(s.index, "change.mode", "'" + *mode + "' is not one of increment|random");
        if (auto n = c.get("step")) {
            if (!n.is_number()) fail(s.index, "change.step", "expected a number, got " + n.type_name());
            s.step = *n.as_number();
            if (!(s.step > 0)) fail(s.index, "change.step", "must be above 0");
            if (s.type == moat::ValueType::integer && s.step != std::floor(s.step))
                fail(s.index, "change.step", "an int item changes by whole steps");
        }
        if (auto n = c.get("period")) {
            if (!n.is_number()) fail(s.index, "change.period", "expected a number of seconds, got " + n.type_name());
            s.period = *n.as_number();
            if (!(s.period >= 0.01 && s.period <= 86400)) fail(s.index, "change.period", "must be in [0.01, 86400] s");
        }
    }

    const moat::Config& cfg_;
    std::vector<moat::ConfigNode> nodes_;
};

class Dummy final : public moat::Plugin {
public:
    /// Run by --check-config and before each start (the host calls it).
    static void validate(const moat::Config& c) {
        auto name = c.get_string("service");
        if (name.rfind("com.victronenergy.", 0) != 0 || std::count(name.begin(), name.end(), '.') < 3)
            c.problem("service", "'" + name + "' is not com.victronenergy.<type>.<suffix>");
        else
            c.claim("service", "the D-Bus name " + name);
        ItemReader(c).read();
    }

    explicit Dummy(moat::Context& ctx) : ctx_(ctx), specs_(ItemReader(ctx.config).read()) {
        const auto& c = ctx_.config;
        name_ = c.get_string("service");
        auto seed = c.get_int("seed");
        rng_.seed(seed ? std::uint64_t(seed) : std::random_device{}());
    }

    moat::Task<void> run() override {
        const auto& c = ctx_.config;
        moat::Service svc(ctx_.loop, name_, ctx_.bus_spec, ctx_.log);
        svc.add_mandatory({.process_name = c.get_string("process_name"),
                           .process_version = c.get_string("process_version"),
                           .connection = c.get_string("connection"),
                           .device_instance = c.get_int("device_instance"),
                           .product_id = c.get_int("product_id"),
                           .product_name = c.get_string("product_name"),
                           .firmware_version = c.get_int("firmware_version"),
                           .hardware_version = c.get_string("hardware_version"),
                           .connected = 1});
        std::map<double, std::vector<std::pair<moat::Item*, const ItemSpec*>>> by_period;
        for (const auto& s : specs_) {
            moat::ItemOptions o;
            if (s.writeable) o.writeable().type(s.type);
            if (s.min) o.min(*s.min);
            if (s.max) o.max(*s.max);
            if (!s.text.empty()) o.text(s.text);
            moat::Item& item = svc.add(s.path, s.value, std::move(o));
            if (s.change != ChangeMode::none) by_period[s.period].emplace_back(&item, &s);
        }
        std::size_t changing = 0;
        for (const auto& [period, items] : by_period) changing += items.size();
        co_await svc.start();
        ctx_.log.info("publishing {} with {} items ({} changing by themselves)", name_, svc.size(), changing);
        auto body = [&](moat::TaskGroup& g) -> moat::Task<void> {
            for (auto& [period, items] : by_period) g.spawn(changer(svc, period, items), "change");
            co_return;
        };
        auto group = moat::with_group(body);
        co_await group;
        // Runs until cancelled (the changers never end); without changes, wait here.
        moat::Event forever;
        co_await forever.wait();
    }

private:
    moat::Task<void> changer(moat::Service& svc, double period,
                             std::vector<std::pair<moat::Item*, const ItemSpec*>> items) {
        const auto interval = duration_cast<moat::Duration>(duration<double>(period));
        auto next = ctx_.loop.clock().now() + interval;
        for (;;) {
            co_await moat::sleep_for(next - ctx_.loop.clock().now());
            next += interval;
            auto batch = svc.batch();  // one ItemsChanged per period
            for (auto& [item, spec] : items) item->set(step(*item, *spec));
        }
    }

    moat::Value step(const moat::Item& item, const ItemSpec& s) {
        double v = item.value().as_number().value_or(s.value.as_number().value_or(0));
        if (s.change == ChangeMode::increment) {
            v += s.step;
            if (s.max && v > *s.max) v = s.min ? *s.min : *s.value.as_number();
        } else {
            std::uniform_real_distribution<double> d(-s.step, s.step);
            v += s.type == moat::ValueType::integer ? std::round(d(rng_)) : d(rng_);
            if (s.min) v = std::max(v, *s.min);
            if (s.max) v = std::min(v, *s.max);
        }
        if (s.type == moat::ValueType::integer) return moat::Value(static_cast<std::int64_t>(std::llround(v)));
        return moat::Value(v);
    }

    moat::Context& ctx_;
    std::vector<ItemSpec> specs_;
    std::string name_;
    std::mt19937_64 rng_;
};

const moat::ConfigKey keys[] = {
    {"service", moat::KeyType::string, nullptr, "bus name to publish, com.victronenergy.<type>.<suffix>"},
    {"device_instance", moat::KeyType::integer, "0", "/DeviceInstance", 0, 65535},
    {"product_id", moat::KeyType::integer, "0xFFFF", "/ProductId (shown as 0x....)", 0, 0xFFFF},
    {"product_name", moat::KeyType::string, "\"MoaT dummy device\"", "/ProductName"},
    {"connection", moat::KeyType::string, "\"Dummy\"", "/Mgmt/Connection"},
    {"process_name", moat::KeyType::string, "\"moat-victron dummy\"", "/Mgmt/ProcessName"},
    {"process_version", moat::KeyType::string, "\"1.0\"", "/Mgmt/ProcessVersion"},
    {"firmware_version", moat::KeyType::integer, "0", "/FirmwareVersion", 0, 2147483647},
    {"hardware_version", moat::KeyType::string, "\"\"", "/HardwareVersion"},
    {"seed", moat::KeyType::integer, "0", "seed of the random walks; 0 = a different walk every start", 0, 2147483647},
    {"items", moat::KeyType::array, "[]",
     "the items: [[<instance>.items]] tables with path, type (int|float|string), value, writeable, min, max, "
     "format, unit, change = { mode = increment|random, step, period }"},
};

} // namespace

MOAT_PLUGIN(Dummy, "dummy", "1.0", "Publishes a configurable Venus service (device emulation for tests)", keys)
