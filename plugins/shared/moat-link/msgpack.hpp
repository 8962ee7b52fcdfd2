// The msgpack codec of the MoaT link: a value type, an encoder and a bounded
// decoder.
//
// Why our own codec and not Debian's msgpack-c (libmsgpack-dev): the link
// reads bytes from a device that prints tracebacks on the same line, so the
// decoder must (1) stop at a size, depth and element-count bound before it
// allocates anything a hostile length field asks for, (2) say "need more
// bytes" apart from "this is garbage" so the guarded stream can resync,
// (3) keep an absent map key apart from a nil value (`rly {}` reads the relay,
// `rly {st: nil}` releases it), and (4) accept float32 and float64 alike.
// msgpack-c's zone allocator and object model can do most of it with care,
// but bounding element counts needs its limit API plus our own depth walk,
// and it would be one more library to ship to the GX. The profile we need is
// small (about 300 lines here), and it is fuzzed with the rest of the link.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace moat::bms::msgpack {

using Bytes = std::vector<std::uint8_t>;

struct Value;
using Array = std::vector<Value>;
/// A map keeps insertion order (the encoder writes it so); lookups ignore order.
using Map = std::vector<std::pair<std::string, Value>>;

/// An extension value (type 4 = the device's "proxy" reference). Opaque:
/// decoded, compared, never sent by the link.
struct Ext {
    std::int8_t type = 0;
    Bytes data;
    bool operator==(const Ext&) const = default;
};

struct Nil {
    bool operator==(const Nil&) const = default;
};

/// One msgpack object. Integers that fit are int64; only values above
/// INT64_MAX are uint64. Both float widths decode to double.
struct Value {
    using Storage = std::variant<Nil, bool, std::int64_t, std::uint64_t, double, std::string, Bytes, Array, Map, Ext>;
    Storage v;

    Value() = default;
    Value(Nil) {}
    Value(std::nullptr_t) {}
    Value(bool b) : v(b) {}
    Value(int i) : v(std::int64_t(i)) {}
    Value(long i) : v(std::int64_t(i)) {}
    Value(long long i) : v(std::int64_t(i)) {}
    Value(unsigned u) : v(std::int64_t(u)) {}
    Value(unsigned long u) { set_unsigned(u); }
    Value(unsigned long long u) { set_unsigned(u); }
    Value(double d) : v(d) {}
    Value(const char* s) : v(std::string(s)) {}
    Value(std::string s) : v(std::move(s)) {}
    Value(std::string_view s) : v(std::string(s)) {}
    Value(Bytes b) : v(std::move(b)) {}
    Value(Array a) : v(std::move(a)) {}
    Value(Map m) : v(std::move(m)) {}
    Value(Ext e) : v(std::move(e)) {}

    bool is_nil() const { return std::holds_alternative<Nil>(v); }
    bool is_bool() const { return std::holds_alternative<bool>(v); }
    bool is_int() const { return std::holds_alternative<std::int64_t>(v) || std::holds_alternative<std::uint64_t>(v); }
    bool is_number() const { return is_int() || std::holds_alternative<double>(v); }
    bool is_str() const { return std::holds_alternative<std::string>(v); }
    bool is_bin() const { return std::holds_alternative<Bytes>(v); }
    bool is_array() const { return std::holds_alternative<Array>(v); }
    bool is_map() const { return std::holds_alternative<Map>(v); }
    bool is_ext() const { return std::holds_alternative<Ext>(v); }

    /// Typed access; nullptr / nullopt when the type differs.
    const std::string* str() const { return std::get_if<std::string>(&v); }
    const Bytes* bin() const { return std::get_if<Bytes>(&v); }
    const Array* array() const { return std::get_if<Array>(&v); }
    const Map* map() const { return std::get_if<Map>(&v); }
    Map* map() { return std::get_if<Map>(&v); }
    const Ext* ext() const { return std::get_if<Ext>(&v); }
    std::optional<bool> boolean() const;
    /// An integer (a float with an integral value counts too).
    std::optional<std::int64_t> integer() const;
    /// Any number as double.
    std::optional<double> number() const;

    /// Map lookup: nullptr when `key` is absent (nil is a present value).
    const Value* find(std::string_view key) const;
    /// Map insert-or-replace (a non-map becomes an empty map first).
    Value& set(std::string key, Value value);

    /// A short, bounded rendering for logs and tests ("{a: [batt, info], i: 12}").
    std::string dump(std::size_t max_chars = 200) const;

    bool operator==(const Value& o) const;

private:
    void set_unsigned(unsigned long long u) {
        if (u > std::uint64_t(INT64_MAX)) v = std::uint64_t(u);
        else v = std::int64_t(u);
    }
};

/// Maps compare as sets of entries (order carries no meaning on the link).
bool map_equal(const Map& a, const Map& b);

struct EncodeOptions {
    /// Send floats as float32 (what the RP2040 does); false: float64.
    bool float32 = false;
};

/// Append the encoding of `value` to `out`. Throws EncodeError for an Ext
/// (the link never sends one) unless allow_ext.
void encode(const Value& value, Bytes& out, EncodeOptions opt = {}, bool allow_ext = false);
Bytes encode(const Value& value, EncodeOptions opt = {});

class EncodeError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Bounds of one decoded object: every length is checked against them before
/// anything is allocated.
struct Limits {
    std::size_t max_bytes = 64 * 1024;  ///< encoded size of one object
    std::size_t max_depth = 32;         ///< nesting of arrays and maps
    std::size_t max_elements = 16384;   ///< array items + map entries, all levels
};

enum class DecodeStatus { ok, need_more, error };

struct DecodeResult {
    DecodeStatus status = DecodeStatus::error;
    Value value;            ///< when ok
    std::size_t used = 0;   ///< ok: bytes consumed; need_more: the least total size that can complete it
    std::string error;      ///< when error: what was wrong, and at which offset
};

/// Decode one object from the front of `in`. need_more: `in` is a valid
/// prefix (and within the bounds); error: it can never become valid.
DecodeResult decode(std::span<const std::uint8_t> in, const Limits& limits = {});

} // namespace moat::bms::msgpack
