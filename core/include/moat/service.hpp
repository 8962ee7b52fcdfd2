// Exporting a Venus service: a tree of com.victronenergy.BusItem objects
// under one bus name, on a connection of its own (Venus consumers key a
// service by the unique name of its connection).
//
//     moat::Service svc(ctx.loop, "com.victronenergy.battery.demo", ctx.bus_spec, ctx.log);
//     svc.add_mandatory(info);              // the nine mandatory paths (DeviceInfo)
//     auto& voltage = svc.add("/Dc/0/Voltage", 12.5, moat::ItemOptions().text("%.2F V"));
//     auto& limit = svc.add("/Info/MaxChargeCurrent", 50.0,
//         moat::ItemOptions().writeable().type(moat::ValueType::floating).range(0.0, 200.0).text("%.1F A"));
//     co_await svc.start();                 // requests the name: every path exists by now
//     voltage.set(12.7);                    // one PropertiesChanged
//     {
//         auto batch = svc.batch();         // one ItemsChanged for everything in the block
//         ...
//     }
//     auto writes = svc.writes();           // remote SetValue calls, after validation
//     moat::Write w = co_await writes.next();
//
// Behaviour on the bus is velib's: SetValue returns 0/1/2 in velib's
// order, equal writes keep the stored type and send nothing, a change is
// announced by exactly one signal, tree nodes answer GetValue/GetText with
// relative dicts, `/` answers GetItems. Everything runs on the loop.
#pragma once

#include "moat/export.hpp"

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "moat/bus.hpp"
#include "moat/log.hpp"
#include "moat/task.hpp"
#include "moat/value.hpp"

namespace moat {

/// The D-Bus interface of every exported object.
inline constexpr const char* busitem_interface = "com.victronenergy.BusItem";

/// Renders an item's value as its text (velib's gettextcallback). Never
/// called for the invalid value: that always reads `---`.
using TextFormatter = std::function<std::string(const Value&)>;
/// Accepts (true) or refuses (false) a value written over D-Bus, after
/// coercion. Sees the invalid value too when a client invalidates the item.
using Validator = std::function<bool(const Value&)>;

class Item;

/// The outcome of a WritePolicy: the SetValue result code and, when the write
/// is accepted, the value to store (it may differ from the written one).
struct MOAT_API WriteResult {
    std::int32_t code = 0;
    std::optional<Value> store;
};
/// Replaces velib's SetValue steps for one item, for services with
/// other rules (the settings service). Gets the decoded value (from_variant,
/// not coerced). Storing a value equal to the current one (Value ==) does
/// nothing else; storing another one is announced and reported like any
/// accepted write. An exception becomes an error reply.
using WritePolicy = std::function<WriteResult(const Item& item, const Value& written)>;

/// Coercion applied to a written value before validation, as Python's
/// int(), float() and str() do. Invalid is never coerced.
enum class ValueType { any, integer, floating, string };

/// `v` coerced to `type`; nullopt when Python would raise (then
/// SetValue returns 1). Invalid passes unchanged; ValueType::any is identity.
MOAT_API std::optional<Value> coerce(const Value& v, ValueType type);

/// Ready-made text formatters.
namespace format {
/// A printf-style format as Venus uses them: "%.1F A", "%d", "%.0F %%",
/// "%.2fV", "%dW", "%x". Integer conversions truncate a double (Python's
/// `%d`); float conversions accept integers and booleans. A value the
/// format cannot take (a string for `%d`) falls back to the default text.
/// Throws std::invalid_argument for a malformed format.
MOAT_API TextFormatter printf(std::string_view fmt);
/// An enum table: the text of the integer value, `fallback` for anything else.
MOAT_API TextFormatter table(std::map<std::int64_t, std::string> entries, std::string fallback = "");
/// `0x` and upper-case hex, as velib shows /ProductId.
MOAT_API TextFormatter hex();
} // namespace format

/// Ready-made validators.
namespace validate {
/// A number (not a boolean) with lo <= v <= hi.
MOAT_API Validator range(double lo, double hi);
/// A number equal (Value ==) to one of `values`.
MOAT_API Validator one_of(std::vector<Value> values);
} // namespace validate

/// How an item behaves; chain the setters:
/// `ItemOptions().writeable().type(ValueType::floating).range(0.0, 200.0).text("%.1F A")`.
/// The default is a read-only item with the default text.
class MOAT_API ItemOptions {
public:
    /// SetValue allowed (otherwise it returns 1).
    ItemOptions& writeable(bool w = true) { writeable_ = w; return *this; }
    /// Coercion of written values (see coerce()).
    ItemOptions& type(ValueType t) { type_ = t; return *this; }
    /// Accepts or refuses a written value after coercion and the min/max check.
    ItemOptions& validator(Validator v) { validator_ = std::move(v); return *this; }
    /// The text formatter; default: Python str(), for `/ProductId` hex.
    ItemOptions& text(TextFormatter f) { text_ = std::move(f); return *this; }
    /// Shorthand for text(format::printf(fmt)).
    ItemOptions& text(std::string_view printf_format);
    /// Also report a remote write of the value the item already has (to
    /// on_write(), writes() and written(), with Write::changed false). The
    /// bus sees velib's behaviour unchanged (0, no signal); the owner learns
    /// that a client rewrote the value, which keep-alive paths need (a Multi
    /// falls back when /Hub4/L1/AcPowerSetpoint is not rewritten in time).
    ItemOptions& report_equal_writes(bool r = true) { report_equal_writes_ = r; return *this; }
    /// GetDescription's answer; "" when not given (velib).
    ItemOptions& description(std::string d) { description_ = std::move(d); return *this; }
    /// A written number outside [min, max] is refused (2); a written
    /// non-number too. They also answer GetMin/GetMax and appear in GetItems.
    ItemOptions& min(Value v) { min_ = std::move(v); return *this; }
    ItemOptions& max(Value v) { max_ = std::move(v); return *this; }
    ItemOptions& range(Value lo, Value hi) { return min(std::move(lo)).max(std::move(hi)); }
    /// GetDefault's answer; Item::reset() goes back to it.
    ItemOptions& default_value(Value v) { default_ = std::move(v); return *this; }
    /// SetValue follows `p` instead of the steps above (writeable, type,
    /// min/max and validator are then not consulted).
    ItemOptions& write_policy(WritePolicy p) { policy_ = std::move(p); return *this; }

    bool is_writeable() const { return writeable_; }
    bool reports_equal_writes() const { return report_equal_writes_; }
    ValueType type() const { return type_; }
    const Validator& validator() const { return validator_; }
    const TextFormatter& text() const { return text_; }
    const std::string& description() const { return description_; }
    const std::optional<Value>& min() const { return min_; }
    const std::optional<Value>& max() const { return max_; }
    const std::optional<Value>& default_value() const { return default_; }
    const WritePolicy& write_policy() const { return policy_; }

private:
    bool writeable_ = false;
    bool report_equal_writes_ = false;
    ValueType type_ = ValueType::any;
    Validator validator_;
    TextFormatter text_;
    std::string description_;
    std::optional<Value> min_, max_, default_;
    WritePolicy policy_;
};

/// A remote write that passed validation and changed the value (or, for an
/// item with ItemOptions::report_equal_writes(), rewrote the same value).
struct MOAT_API Write {
    std::string path;
    Value old_value;
    Value value;
    std::string sender;    ///< unique name of the writer
    bool changed = true;   ///< false: an equal rewrite (report_equal_writes)
};

/// Another process owns the bus name (RequestName answered "exists").
class MOAT_API NameTakenError : public std::runtime_error {
public:
    NameTakenError(std::string name, std::string owner);
    const std::string& name() const { return name_; }
    const std::string& owner() const { return owner_; }

private:
    std::string name_, owner_;
};

/// No item at that path.
class MOAT_API ItemNotFound : public std::out_of_range {
public:
    ItemNotFound(std::string service, std::string path);
    const std::string& service() const { return service_; }
    const std::string& path() const { return path_; }

private:
    std::string service_, path_;
};

/// The item or service went away while a task waited for a write to it.
class MOAT_API ItemRemoved : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The mandatory paths, for Service::add_mandatory(). Name every
/// field in a designated initializer (g++ 12's -Wextra warns about omitted ones).
struct MOAT_API DeviceInfo {
    std::string process_name;
    std::string process_version;
    std::string connection;        ///< e.g. "Modbus RTU ttyUSB0:1"
    std::int64_t device_instance = 0;
    std::int64_t product_id = 0;   ///< shown as 0x....
    std::string product_name;
    Value firmware_version;        ///< integer or string; may be invalid
    Value hardware_version;        ///< anything; may be invalid
    std::int64_t connected = 1;
};

class Service;

/// One exported path. Owned by its Service; a reference stays valid until
/// the path is removed.
class MOAT_API Item {
public:
    Item(const Item&) = delete;
    Item& operator=(const Item&) = delete;
    ~Item();

    const std::string& path() const { return path_; }
    const Value& value() const { return value_; }
    /// The text (formatter, `---` for invalid, hex for /ProductId).
    std::string text() const;
    const ItemOptions& options() const { return options_; }

    /// A local update: nothing when equal (Value ==); otherwise stored and
    /// announced (PropertiesChanged, or the batch's ItemsChanged).
    void set(Value v);
    /// Make the value invalid (announced like set()).
    void invalidate() { set(Value()); }
    /// Set the default value given in the options (throws std::logic_error without one).
    void reset();
    /// Replace the options (the value stays; nothing is announced). Min, max
    /// and default appear in GetItems and GetMin/GetMax/GetDefault at once.
    void set_options(ItemOptions options);
    /// Emit PropertiesChanged on this path with exactly `entries` (e.g.
    /// `{Value, Text, Default, Min, Max}` of a settings object). Values
    /// are encoded by to_variant(); nothing else happens.
    void announce(const Value::Dict& entries);

    /// The next remote write to this item after this call (after validation;
    /// one that comes before the task is awaited counts): awaitable, yields
    /// the new value (the latest one when several came before the task ran;
    /// use Service::writes() to see every write). Throws ItemRemoved when the
    /// item goes away first.
    Task<Value> written();

    struct Waiters;  ///< (implementation)

private:
    friend class Service;
    Item(Service& service, std::string path, Value value, ItemOptions options);

    Service* service_;
    std::string path_;
    Value value_;
    ItemOptions options_;
    std::unique_ptr<sdbus::IObject> object_;
    bool removing_ = false;  ///< deleted inside a batch: goes at its end
    std::shared_ptr<Waiters> waiters_;
};

/// Remote writes, queued from the moment the stream was made; none is lost
/// while the owner is busy. Get one from Service::writes().
class MOAT_API WriteStream {
public:
    WriteStream(WriteStream&&) noexcept = default;
    WriteStream& operator=(WriteStream&&) noexcept = default;
    ~WriteStream();

    /// The next write (waits when none is queued). Throws ItemRemoved when
    /// the service was destroyed.
    Task<Write> next();
    /// Writes already queued.
    std::size_t pending() const;

    struct State;  ///< (implementation)

private:
    friend class Service;
    explicit WriteStream(std::shared_ptr<State> s) : state_(std::move(s)) {}
    std::shared_ptr<State> state_;
};

/// Objects an extra method is offered on (Service::add_method); combine with |.
enum ObjectKinds : unsigned { on_root = 1, on_nodes = 2, on_items = 4 };

/// Handles an extra method: reads the arguments from `call` and sends the
/// reply itself (`auto r = call.createReply(); r << ...; r.send();`; nothing
/// when `call.doesntExpectReply()`). An sdbus::Error it throws is the error
/// reply; any other exception becomes org.freedesktop.DBus.Error.Failed.
using MethodHandler = std::function<void(const std::string& path, sdbus::MethodCall& call)>;  ///< library-internal

/// A Venus service: its own connection, its items, its bus name.
class MOAT_API Service {
public:
    /// Opens a connection of its own on `bus_spec` ("system", "session" or an
    /// address; BusError when unreachable) and creates `/`. The name is not
    /// requested before start().
    Service(Loop& loop, std::string name, const std::string& bus_spec, Logger log);
    ~Service();
    Service(const Service&) = delete;
    Service& operator=(const Service&) = delete;

    const std::string& name() const { return name_; }
    Bus& bus() { return *bus_; }
    bool started() const { return started_; }
    /// False for a service that is not a device (the settings service):
    /// start() then does not look for the mandatory paths.
    void set_device(bool is_device) { device_ = is_device; }
    /// The level of the log line for each accepted remote write that changes
    /// a value (default info; a simulated device written every second: debug).
    void set_write_log_level(LogLevel level) { write_log_level_ = level; }

    /// Export `path` (absolute, D-Bus object path syntax) with `value`.
    /// Throws std::invalid_argument for a bad path, an existing one, or one
    /// that would be both an item and a node (`/A` and `/A/B`). Inside a batch
    /// the new item is announced in its ItemsChanged; outside, no signal (velib).
    Item& add(const std::string& path, Value value, ItemOptions options = {});
    /// The nine mandatory paths: /Mgmt/ProcessName, /Mgmt/ProcessVersion,
    /// /Mgmt/Connection, /DeviceInstance, /ProductId, /ProductName,
    /// /FirmwareVersion, /HardwareVersion, /Connected.
    void add_mandatory(const DeviceInfo& info);
    /// Remove one item. Outside a batch it goes at once without a signal;
    /// inside, it is invalidated (announced) and removed at the batch's end.
    /// Parent nodes without items go with it. Throws ItemNotFound.
    void remove(const std::string& path);
    /// Remove every item at or below `prefix` (as remove()); returns how many.
    std::size_t remove_tree(const std::string& prefix);

    /// Keep the tree node `path` (and its parents) even while no item lies
    /// below it, so that methods on it answer (settings groups).
    /// Throws std::invalid_argument for a bad path or an item path.
    void pin_node(const std::string& path);
    /// True when `path` is `/` or a tree node (a proper prefix of an item path, or pinned).
    bool is_node(const std::string& path) const { return path == "/" || nodes_.count(path) > 0; }

    Item* find(const std::string& path);
    /// Throws ItemNotFound.
    Item& at(const std::string& path);
    /// at(path).set(v).
    void set(const std::string& path, Value v) { at(path).set(std::move(v)); }
    std::size_t size() const { return items_.size(); }
    /// Every item path, sorted.
    std::vector<std::string> paths() const;

    /// RAII: local updates, additions and removals until the last guard goes
    /// are announced together in one ItemsChanged on `/`, carrying only the
    /// items whose value changed; nothing when nothing changed. Nests.
    class [[nodiscard]] Batch {
    public:
        Batch(Batch&& o) noexcept : service_(std::exchange(o.service_, nullptr)) {}
        Batch(const Batch&) = delete;
        Batch& operator=(const Batch&) = delete;
        Batch& operator=(Batch&&) = delete;
        ~Batch();

    private:
        friend class Service;
        explicit Batch(Service& s);
        Service* service_;
    };
    Batch batch() { return Batch(*this); }
    bool in_batch() const { return batch_depth_ > 0; }

    /// Called for every remote write that changed a value, after the reply.
    /// An exception it throws is logged. Returns an id for remove_write_observer().
    std::size_t on_write(std::function<void(const Write&)> fn);
    void remove_write_observer(std::size_t id);
    /// A queue of the remote writes from now on.
    WriteStream writes();

    /// Request the name (DO_NOT_QUEUE, asynchronously). Call it after the
    /// items exist: consumers read a new service at once and skip one without
    /// /DeviceInstance. Throws NameTakenError when another connection owns
    /// it, sdbus::Error for other failures.
    Task<void> start(Duration timeout = std::chrono::seconds(10));
    /// Invalidate the values in one ItemsChanged (/Connected becomes 0; the
    /// identity paths — /DeviceInstance, /ProductName, /Mgmt/*, /CustomName
    /// ... — stay valid), then release the name. The connection closes with
    /// the Service. (Our issue asks for the invalidation, so that consumers
    /// see the values go; velib skips it, because blank names
    /// flash in the GUI:
    /// set_invalidate_on_stop(false) behaves like velib.)
    Task<void> stop(Duration timeout = std::chrono::seconds(5));
    void set_invalidate_on_stop(bool on) { invalidate_on_stop_ = on; }

private:
    friend class SettingsService;  // the only user of add_method (library-internal)

    /// (Library-internal: plugins export methods with moat::DBusObject.)
    /// Offer one more method on the objects of `kinds` (on_root | on_nodes |
    /// on_items), e.g. the settings service's AddSettings on `/` and every
    /// group. It replaces a built-in method of the same interface and name
    /// (GetMin, GetMax, GetDefault on items). Calls without an interface field
    /// find it by name. Only before the first item is added (std::logic_error).
    void add_method(unsigned kinds, std::string interface, std::string name, std::string in_signature,
                    std::string out_signature, MethodHandler handler);
    friend class Item;
    struct Node {
        std::size_t items = 0;  ///< items below
        std::unique_ptr<sdbus::IObject> object;
    };
    enum class Kind { root, node, item };
    struct Filter;
    struct ExtraMethod {
        unsigned kinds;
        std::string interface, name, in_signature, out_signature;
        MethodHandler handler;
    };
    static unsigned bit(Kind k) { return k == Kind::root ? on_root : k == Kind::node ? on_nodes : on_items; }
    bool overridden(Kind kind, const char* interface, const char* name) const;
    const ExtraMethod* extra_method(Kind kind, const std::string& name, const char* interface) const;
    void register_extras(sdbus::IObject& obj, Kind kind, const std::string& path);

    void check_new_path(const std::string& path) const;
    void create_item_object(Item& item);
    void create_node_object(const std::string& path, Node& node);
    void create_root_object();
    void erase_item(const std::string& path);
    void changed(Item& item);
    void flush_batch();
    void end_batch();

    /// Every method on every object comes here (also those sd-bus could not
    /// route: no interface field, SetValue with a bare value). Never throws.
    void dispatch(const std::string& path, sdbus::MethodCall& call);
    bool is_our_path(const std::string& path, Kind* kind) const;
    void handle_set_value(Item& item, sdbus::MethodCall& call);
    void write_accepted(Item& item, Value old_value, const std::string& sender, bool changed = true);
    std::map<std::string, sdbus::Variant> entry_of(const Item& item, bool extras) const;
    void emit_properties_changed(Item& item);

    Loop& loop_;
    std::string name_;
    Logger log_;
    std::unique_ptr<Bus> bus_;
    std::unique_ptr<Filter> filter_;
    std::unique_ptr<sdbus::IObject> root_;
    std::map<std::string, std::unique_ptr<Item>> items_;
    std::map<std::string, Node> nodes_;  ///< proper prefixes of item paths and pinned nodes, not `/`
    std::vector<ExtraMethod> methods_;
    int batch_depth_ = 0;
    std::set<std::string> batch_changed_;
    std::vector<std::string> batch_removed_;
    std::map<std::size_t, std::function<void(const Write&)>> observers_;
    std::size_t next_observer_ = 1;
    std::vector<std::weak_ptr<WriteStream::State>> streams_;
    bool started_ = false;
    bool device_ = true;
    bool invalidate_on_stop_ = true;
    LogLevel write_log_level_ = LogLevel::info;
    // Objects and items removed while a handler runs go when dispatch() returns.
    int dispatch_depth_ = 0;
    std::string dispatching_;
    std::vector<std::unique_ptr<sdbus::IObject>> graveyard_;
    std::vector<std::unique_ptr<Item>> dead_items_;
};

} // namespace moat
