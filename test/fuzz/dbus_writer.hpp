// A D-Bus variant whose contents a fuzz input writes: a signature (taken as
// text, or generated from the input), then a value of that type drawn from
// the input, written through sdbus-c++ into a real sd-bus message, so the
// decoder reads exactly what it would read off the bus.
//
// sdbus::Variant only lets a value into its message through `msg << T`; the
// type T here takes its signature from a thread-local set just before, the
// same way core/lib/value.cpp reads variants.
#pragma once

#include <sdbus-c++/sdbus-c++.h>

#include <fcntl.h>

#include <optional>
#include <string>

#include "fuzz_input.hpp"

namespace moat::fuzz {

struct DbusWriterState {
    FuzzInput* in = nullptr;
    std::string signature;
    /// Something the decoder refuses was written: a struct, a unix fd, a dict
    /// entry with a non-string key, a `t` above INT64_MAX.
    bool unsupported = false;
    int depth_left = 0;
};
inline thread_local DbusWriterState dbus_writer;

struct FuzzedVariantContents {};

} // namespace moat::fuzz

template <> struct sdbus::signature_of<moat::fuzz::FuzzedVariantContents> {
    static const std::string str() { return moat::fuzz::dbus_writer.signature; }
};

namespace moat::fuzz {

/// Index past the complete type at `pos` (the signature is valid).
inline std::size_t type_end(const std::string& sig, std::size_t pos)
{
    const char c = sig[pos];
    if (c == 'a') return type_end(sig, pos + 1);
    if (c == '{' || c == '(') {
        const char close = c == '{' ? '}' : ')';
        std::size_t p = pos + 1;
        while (sig[p] != close) p = type_end(sig, p);
        return p + 1;
    }
    return pos + 1;
}

/// A signature of one complete type from the input, nesting at most `depth`.
inline std::string generated_signature(FuzzInput& in, int depth)
{
    static const char basic[] = "ybnqiuxtdsogh";
    const auto k = in.pick(depth > 0 ? 17 : 13);
    if (k < 13) return std::string(1, basic[k]);
    switch (k) {
    case 13: return "v";
    case 14: return "a" + generated_signature(in, depth - 1);
    case 15: return std::string("a{") + basic[in.pick(12)] + generated_signature(in, depth - 1) + "}";  // no fd key
    default: {
        std::string s = "(";
        for (std::size_t n = 1 + in.pick(3); n > 0; --n) s += generated_signature(in, depth - 1);
        return s + ")";
    }
    }
}

inline int null_fd()
{
    static int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd;
}

inline void write_item(sdbus::Message& msg, const std::string& type)
{
    auto& st = dbus_writer;
    FuzzInput& in = *st.in;
    switch (type[0]) {
    case 'y': msg << in.byte(); return;
    case 'b': msg << in.flag(); return;
    case 'n': msg << in.raw<std::int16_t>(); return;
    case 'q': msg << in.raw<std::uint16_t>(); return;
    case 'i': msg << in.raw<std::int32_t>(); return;
    case 'u': msg << in.raw<std::uint32_t>(); return;
    case 'x': msg << in.raw<std::int64_t>(); return;
    case 't': {
        const auto u = in.raw<std::uint64_t>();
        if (u > std::uint64_t(INT64_MAX)) st.unsupported = true;
        msg << u;
        return;
    }
    case 'd': msg << in.raw<double>(); return;
    case 's': msg << in.text(32); return;
    case 'o': {
        // Object paths and signatures are checked by sd-bus: pick valid ones.
        static const char* paths[] = {"/", "/Ac/L1/Power", "/a_b/C9"};
        msg << sdbus::ObjectPath(paths[in.pick(3)]);
        return;
    }
    case 'g': {
        static const char* sigs[] = {"", "i", "a{sv}", "(ii)v"};
        msg << sdbus::Signature(sigs[in.pick(4)]);
        return;
    }
    case 'h': st.unsupported = true; msg << sdbus::UnixFd(null_fd()); return;
    case 'v': {
        const std::string inner = st.depth_left-- > 0 ? generated_signature(in, 3) : "i";
        msg.openVariant(inner);
        write_item(msg, inner);
        msg.closeVariant();
        return;
    }
    case '(': {
        st.unsupported = true;
        const std::string contents = type.substr(1, type.size() - 2);
        msg.openStruct(contents);
        for (std::size_t p = 0; p < contents.size();) {
            const std::size_t e = type_end(contents, p);
            write_item(msg, contents.substr(p, e - p));
            p = e;
        }
        msg.closeStruct();
        return;
    }
    case 'a': {
        const std::string element = type.substr(1);
        const std::size_t n = in.pick(5);
        msg.openContainer(element);
        if (element[0] == '{') {
            const std::string entry = element.substr(1, element.size() - 2);
            const std::string key(1, entry[0]);
            const std::string value = entry.substr(1);
            if (n > 0 && key != "s" && key != "o" && key != "g") st.unsupported = true;
            for (std::size_t i = 0; i < n; ++i) {
                msg.openDictEntry(entry);
                write_item(msg, key);
                write_item(msg, value);
                msg.closeDictEntry();
            }
        } else {
            for (std::size_t i = 0; i < n; ++i) write_item(msg, element);
        }
        msg.closeContainer();
        return;
    }
    }
}

inline sdbus::Message& operator<<(sdbus::Message& msg, const FuzzedVariantContents&)
{
    write_item(msg, dbus_writer.signature);
    return msg;
}

/// The variant, or nullopt when sd-bus refuses the signature or the value
/// (too deep, an invalid text signature).
inline std::optional<sdbus::Variant> fuzzed_variant(FuzzInput& in)
{
    auto& st = dbus_writer;
    st = DbusWriterState{&in, "", false, 70};
    if (in.flag()) st.signature = in.text(40);
    else st.signature = generated_signature(in, 4);
    if (st.signature.empty()) return std::nullopt;
    try {
        return sdbus::Variant(FuzzedVariantContents{});
    } catch (const sdbus::Error&) {
        return std::nullopt;
    }
}

} // namespace moat::fuzz

