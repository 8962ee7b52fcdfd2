#include "msgpack.hpp"

#include <bit>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <set>

namespace moat::bms::msgpack {

// ---- Value ----------------------------------------------------------------

std::optional<bool> Value::boolean() const
{
    if (auto* b = std::get_if<bool>(&v)) return *b;
    return std::nullopt;
}

std::optional<std::int64_t> Value::integer() const
{
    if (auto* i = std::get_if<std::int64_t>(&v)) return *i;
    if (auto* d = std::get_if<double>(&v)) {
        if (std::isfinite(*d) && std::trunc(*d) == *d && std::fabs(*d) < 9.0e18) return std::int64_t(*d);
    }
    return std::nullopt;
}

std::optional<double> Value::number() const
{
    if (auto* i = std::get_if<std::int64_t>(&v)) return double(*i);
    if (auto* u = std::get_if<std::uint64_t>(&v)) return double(*u);
    if (auto* d = std::get_if<double>(&v)) return *d;
    return std::nullopt;
}

const Value* Value::find(std::string_view key) const
{
    if (auto* m = map())
        for (auto& [k, val] : *m)
            if (k == key) return &val;
    return nullptr;
}

Value& Value::set(std::string key, Value value)
{
    if (!is_map()) v = Map{};
    auto& m = std::get<Map>(v);
    for (auto& [k, val] : m)
        if (k == key) return val = std::move(value);
    m.emplace_back(std::move(key), std::move(value));
    return m.back().second;
}

bool map_equal(const Map& a, const Map& b)
{
    if (a.size() != b.size()) return false;
    for (auto& [k, val] : a) {
        bool found = false;
        for (auto& [k2, val2] : b)
            if (k == k2) {
                if (!(val == val2)) return false;
                found = true;
                break;
            }
        if (!found) return false;
    }
    return true;
}

bool Value::operator==(const Value& o) const
{
    if (auto* m = map()) {
        auto* om = o.map();
        return om && map_equal(*m, *om);
    }
    if (auto* a = array()) {
        auto* oa = o.array();
        return oa && *a == *oa;
    }
    return v == o.v;
}

namespace {

void dump_to(const Value& val, std::string& out, std::size_t max)
{
    if (out.size() > max) return;
    std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, Nil>) out += "nil";
            else if constexpr (std::is_same_v<T, bool>) out += x ? "true" : "false";
            else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, std::uint64_t>) out += fmt::format("{}", x);
            else if constexpr (std::is_same_v<T, double>) out += fmt::format("{}", x);
            else if constexpr (std::is_same_v<T, std::string>) out += x;
            else if constexpr (std::is_same_v<T, Bytes>) {
                out += "b'";
                for (std::size_t i = 0; i < x.size() && out.size() <= max; ++i) out += fmt::format("{:02X}", x[i]);
                out += "'";
            } else if constexpr (std::is_same_v<T, Array>) {
                out += "[";
                for (std::size_t i = 0; i < x.size() && out.size() <= max; ++i) {
                    if (i) out += ", ";
                    dump_to(x[i], out, max);
                }
                out += "]";
            } else if constexpr (std::is_same_v<T, Map>) {
                out += "{";
                for (std::size_t i = 0; i < x.size() && out.size() <= max; ++i) {
                    if (i) out += ", ";
                    out += x[i].first;
                    out += ": ";
                    dump_to(x[i].second, out, max);
                }
                out += "}";
            } else if constexpr (std::is_same_v<T, Ext>) {
                out += fmt::format("ext{}({} bytes)", x.type, x.data.size());
            }
        },
        val.v);
}

} // namespace

std::string Value::dump(std::size_t max_chars) const
{
    std::string out;
    dump_to(*this, out, max_chars);
    if (out.size() > max_chars) {
        out.resize(max_chars);
        out += "…";
    }
    return out;
}

// ---- encoder --------------------------------------------------------------

namespace {

template <class T>
void put_be(Bytes& out, T x)
{
    for (int i = int(sizeof(T)) - 1; i >= 0; --i) out.push_back(std::uint8_t(std::uint64_t(x) >> (8 * i)));
}

void put_len(Bytes& out, std::size_t n, std::uint8_t fix_base, std::size_t fix_max, std::uint8_t t8, std::uint8_t t16,
             std::uint8_t t32)
{
    if (n <= fix_max && fix_base) out.push_back(std::uint8_t(fix_base | n));
    else if (n <= 0xFF && t8) { out.push_back(t8); out.push_back(std::uint8_t(n)); }
    else if (n <= 0xFFFF) { out.push_back(t16); put_be(out, std::uint16_t(n)); }
    else if (n <= 0xFFFFFFFFu) { out.push_back(t32); put_be(out, std::uint32_t(n)); }
    else throw EncodeError("msgpack: object too long");
}

void put_uint(Bytes& out, std::uint64_t u)
{
    if (u < 0x80) out.push_back(std::uint8_t(u));
    else if (u <= 0xFF) { out.push_back(0xCC); out.push_back(std::uint8_t(u)); }
    else if (u <= 0xFFFF) { out.push_back(0xCD); put_be(out, std::uint16_t(u)); }
    else if (u <= 0xFFFFFFFFu) { out.push_back(0xCE); put_be(out, std::uint32_t(u)); }
    else { out.push_back(0xCF); put_be(out, u); }
}

void put_int(Bytes& out, std::int64_t i)
{
    if (i >= 0) return put_uint(out, std::uint64_t(i));
    if (i >= -32) out.push_back(std::uint8_t(i));
    else if (i >= INT8_MIN) { out.push_back(0xD0); out.push_back(std::uint8_t(i)); }
    else if (i >= INT16_MIN) { out.push_back(0xD1); put_be(out, std::uint16_t(i)); }
    else if (i >= INT32_MIN) { out.push_back(0xD2); put_be(out, std::uint32_t(i)); }
    else { out.push_back(0xD3); put_be(out, std::uint64_t(i)); }
}

} // namespace

void encode(const Value& value, Bytes& out, EncodeOptions opt, bool allow_ext)
{
    std::visit(
        [&](const auto& x) {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, Nil>) out.push_back(0xC0);
            else if constexpr (std::is_same_v<T, bool>) out.push_back(x ? 0xC3 : 0xC2);
            else if constexpr (std::is_same_v<T, std::int64_t>) put_int(out, x);
            else if constexpr (std::is_same_v<T, std::uint64_t>) put_uint(out, x);
            else if constexpr (std::is_same_v<T, double>) {
                if (opt.float32) { out.push_back(0xCA); put_be(out, std::bit_cast<std::uint32_t>(float(x))); }
                else { out.push_back(0xCB); put_be(out, std::bit_cast<std::uint64_t>(x)); }
            } else if constexpr (std::is_same_v<T, std::string>) {
                put_len(out, x.size(), 0xA0, 31, 0xD9, 0xDA, 0xDB);
                out.insert(out.end(), x.begin(), x.end());
            } else if constexpr (std::is_same_v<T, Bytes>) {
                put_len(out, x.size(), 0, 0, 0xC4, 0xC5, 0xC6);
                out.insert(out.end(), x.begin(), x.end());
            } else if constexpr (std::is_same_v<T, Array>) {
                put_len(out, x.size(), 0x90, 15, 0, 0xDC, 0xDD);
                for (auto& e : x) encode(e, out, opt, allow_ext);
            } else if constexpr (std::is_same_v<T, Map>) {
                put_len(out, x.size(), 0x80, 15, 0, 0xDE, 0xDF);
                for (auto& [k, e] : x) {
                    encode(Value(k), out, opt, allow_ext);
                    encode(e, out, opt, allow_ext);
                }
            } else if constexpr (std::is_same_v<T, Ext>) {
                if (!allow_ext) throw EncodeError("msgpack: the link never sends an extension value");
                const std::size_t n = x.data.size();
                static constexpr std::uint8_t fixext[] = {0, 0xD4, 0xD5, 0, 0xD6, 0, 0, 0, 0xD7, 0, 0, 0, 0, 0, 0, 0, 0xD8};
                if (n <= 16 && fixext[n]) out.push_back(fixext[n]);
                else put_len(out, n, 0, 0, 0xC7, 0xC8, 0xC9);
                out.push_back(std::uint8_t(x.type));
                out.insert(out.end(), x.data.begin(), x.data.end());
            }
        },
        value.v);
}

Bytes encode(const Value& value, EncodeOptions opt)
{
    Bytes out;
    encode(value, out, opt);
    return out;
}

// ---- decoder --------------------------------------------------------------

namespace {

struct NeedMore {
    std::size_t needed;
};
struct Bad {
    std::string what;
};

class Reader {
public:
    Reader(std::span<const std::uint8_t> in, const Limits& l) : in_(in), lim_(l) {}

    Value read(std::size_t depth)
    {
        const std::uint8_t t = byte();
        if (t <= 0x7F) return Value(std::int64_t(t));
        if (t >= 0xE0) return Value(std::int64_t(std::int8_t(t)));
        if ((t & 0xF0) == 0x80) return read_map(t & 0x0F, depth);
        if ((t & 0xF0) == 0x90) return read_array(t & 0x0F, depth);
        if ((t & 0xE0) == 0xA0) return read_str(t & 0x1F);
        switch (t) {
        case 0xC0: return Value(Nil{});
        case 0xC2: return Value(false);
        case 0xC3: return Value(true);
        case 0xC4: return read_bin(be(1));
        case 0xC5: return read_bin(be(2));
        case 0xC6: return read_bin(be(4));
        case 0xC7: { auto n = be(1); return read_ext(n); }
        case 0xC8: { auto n = be(2); return read_ext(n); }
        case 0xC9: { auto n = be(4); return read_ext(n); }
        case 0xCA: return Value(double(std::bit_cast<float>(std::uint32_t(be(4)))));
        case 0xCB: return Value(std::bit_cast<double>(be(8)));
        case 0xCC: return Value(std::int64_t(be(1)));
        case 0xCD: return Value(std::int64_t(be(2)));
        case 0xCE: return Value(std::int64_t(be(4)));
        case 0xCF: return Value(static_cast<unsigned long long>(be(8)));
        case 0xD0: return Value(std::int64_t(std::int8_t(be(1))));
        case 0xD1: return Value(std::int64_t(std::int16_t(be(2))));
        case 0xD2: return Value(std::int64_t(std::int32_t(be(4))));
        case 0xD3: return Value(std::int64_t(be(8)));
        case 0xD4: return read_ext(1);
        case 0xD5: return read_ext(2);
        case 0xD6: return read_ext(4);
        case 0xD7: return read_ext(8);
        case 0xD8: return read_ext(16);
        case 0xD9: return read_str(be(1));
        case 0xDA: return read_str(be(2));
        case 0xDB: return read_str(be(4));
        case 0xDC: return read_array(be(2), depth);
        case 0xDD: return read_array(be(4), depth);
        case 0xDE: return read_map(be(2), depth);
        case 0xDF: return read_map(be(4), depth);
        default: throw Bad{fmt::format("type byte 0x{:02X} is never used", t)};
        }
    }
    std::size_t pos() const { return pos_; }

private:
    std::uint8_t byte()
    {
        need(1);
        return in_[pos_++];
    }
    std::uint64_t be(int n)
    {
        need(std::size_t(n));
        std::uint64_t x = 0;
        for (int i = 0; i < n; ++i) x = (x << 8) | in_[pos_++];
        return x;
    }
    void need(std::uint64_t n)
    {
        if (n > lim_.max_bytes || pos_ + n > lim_.max_bytes)
            throw Bad{fmt::format("object longer than {} bytes", lim_.max_bytes)};
        if (pos_ + n > in_.size()) throw NeedMore{pos_ + std::size_t(n)};
    }
    void count(std::uint64_t n)
    {
        if (n > lim_.max_elements || elements_ + n > lim_.max_elements)
            throw Bad{fmt::format("more than {} elements", lim_.max_elements)};
        elements_ += std::size_t(n);
    }
    std::string_view take(std::uint64_t n)
    {
        need(n);
        std::string_view s(reinterpret_cast<const char*>(in_.data() + pos_), std::size_t(n));
        pos_ += std::size_t(n);
        return s;
    }
    Value read_str(std::uint64_t n) { return Value(std::string(take(n))); }
    Value read_bin(std::uint64_t n)
    {
        auto s = take(n);
        return Value(Bytes(s.begin(), s.end()));
    }
    Value read_ext(std::uint64_t n)
    {
        Ext e;
        e.type = std::int8_t(byte());
        auto s = take(n);
        e.data.assign(s.begin(), s.end());
        return Value(std::move(e));
    }
    Value read_array(std::uint64_t n, std::size_t depth)
    {
        if (depth + 1 > lim_.max_depth) throw Bad{fmt::format("nested deeper than {}", lim_.max_depth)};
        count(n);
        Array a;
        // Every element takes at least one byte: never reserve past what is there.
        a.reserve(std::size_t(std::min<std::uint64_t>(n, in_.size() - pos_)));
        for (std::uint64_t i = 0; i < n; ++i) a.push_back(read(depth + 1));
        return Value(std::move(a));
    }
    Value read_map(std::uint64_t n, std::size_t depth)
    {
        if (depth + 1 > lim_.max_depth) throw Bad{fmt::format("nested deeper than {}", lim_.max_depth)};
        count(n);
        Map m;
        std::set<std::string> seen;
        m.reserve(std::size_t(std::min<std::uint64_t>(n, (in_.size() - pos_) / 2)));
        for (std::uint64_t i = 0; i < n; ++i) {
            const std::size_t at = pos_;
            Value k = read(depth + 1);
            auto* s = k.str();
            if (!s) throw Bad{fmt::format("map key at offset {} is not a string", at)};
            // A duplicate key would make lookups depend on order.
            if (!seen.insert(*s).second) throw Bad{fmt::format("duplicate map key '{}'", *s)};
            std::string key = std::move(*std::get_if<std::string>(&k.v));
            m.emplace_back(std::move(key), read(depth + 1));
        }
        return Value(std::move(m));
    }

    std::span<const std::uint8_t> in_;
    const Limits& lim_;
    std::size_t pos_ = 0;
    std::size_t elements_ = 0;
};

} // namespace

DecodeResult decode(std::span<const std::uint8_t> in, const Limits& limits)
{
    DecodeResult r;
    Reader rd(in, limits);
    try {
        r.value = rd.read(0);
        r.used = rd.pos();
        r.status = DecodeStatus::ok;
    } catch (const NeedMore& m) {
        r.status = DecodeStatus::need_more;
        r.used = m.needed;
    } catch (const Bad& b) {
        r.status = DecodeStatus::error;
        r.error = fmt::format("msgpack: {} (at offset {})", b.what, rd.pos());
    }
    return r;
}

} // namespace moat::bms::msgpack
