// toml::parse() with the holes of toml++ 3.3.0 closed (see config_toml.hpp):
// characters that would reach its __builtin_unreachable() are swapped for
// private-use stand-ins before parsing and swapped back after.
#include "config_toml.hpp"

#include <algorithm>
#include <fmt/format.h>

namespace moat {

namespace {

// toml++ 3.3.0's is_non_ascii_horizontal_whitespace() splits U+00A0..U+FEFF
// into blocks of 0x3FA code points; in blocks 0, 11 and 63 it knows only
// U+00A0, U+3000 and U+FEFF and reaches __builtin_unreachable() for the rest.
constexpr char32_t block_size = 0x3FA, blocks_from = 0xA0;
constexpr unsigned unsafe_blocks[] = {0, 11, 63};
// Stand-ins: one per code point of those blocks, in the Private Use Area
// (blocks 56..59 of the same table, which toml++ answers without a gap).
constexpr char32_t stand_in_base = 0xE000;
constexpr char32_t stand_in_end = stand_in_base + 3 * block_size;

int unsafe_block_index(char32_t c) {
    if (c <= 0xA0 || c >= 0xFEFF || c == 0x3000) return -1;
    const unsigned block = (c - blocks_from) / block_size;
    for (int i = 0; i < 3; ++i)
        if (unsafe_blocks[i] == block) return i;
    return -1;
}

char32_t stand_in(char32_t c, int index) { return stand_in_base + index * block_size + (c - blocks_from) % block_size; }

char32_t original(char32_t s) {
    const unsigned index = (s - stand_in_base) / block_size;
    return blocks_from + unsafe_blocks[index] * block_size + (s - stand_in_base) % block_size;
}

/// One well-formed UTF-8 sequence of 2 or 3 bytes at `at` (the code points
/// concerned are all below U+10000); its code point and length, or length 0.
std::pair<char32_t, std::size_t> decode(std::string_view s, std::size_t at) {
    auto cont = [&](std::size_t i) { return i < s.size() && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80; };
    const unsigned char b = static_cast<unsigned char>(s[at]);
    if (b >= 0xC2 && b <= 0xDF && cont(at + 1))
        return {char32_t(b & 0x1F) << 6 | (s[at + 1] & 0x3F), 2};
    if (b >= 0xE0 && b <= 0xEF && cont(at + 1) && cont(at + 2)) {
        char32_t c = char32_t(b & 0x0F) << 12 | char32_t(s[at + 1] & 0x3F) << 6 | (s[at + 2] & 0x3F);
        if (c >= 0x800 && (c < 0xD800 || c > 0xDFFF)) return {c, 3};
    }
    return {0, 0};
}

void append_utf8(std::string& out, char32_t c) {
    if (c < 0x800) {
        out += char(0xC0 | (c >> 6));
    } else {
        out += char(0xE0 | (c >> 12));
        out += char(0x80 | ((c >> 6) & 0x3F));
    }
    out += char(0x80 | (c & 0x3F));
}

/// `text` with each code point for which `swap` gives another one replaced.
template <class Swap>
std::string swapped(std::string_view text, Swap swap) {
    std::string out;
    out.reserve(text.size() + text.size() / 2);
    for (std::size_t i = 0; i < text.size();) {
        auto [c, len] = static_cast<unsigned char>(text[i]) >= 0x80 ? decode(text, i) : std::pair<char32_t, std::size_t>{0, 0};
        if (len == 0) {
            out += text[i++];
            continue;
        }
        append_utf8(out, swap(c));
        i += len;
    }
    return out;
}

std::string restored(std::string_view s) {
    return swapped(s, [](char32_t c) { return c >= stand_in_base && c < stand_in_end ? original(c) : c; });
}

/// Swap the stand-ins back in every string and key of `node`.
void restore(toml::node& node) {
    if (auto* str = node.as_string()) {
        str->get() = restored(str->get());
    } else if (auto* arr = node.as_array()) {
        for (auto& e : *arr) restore(e);
    } else if (auto* tbl = node.as_table()) {
        std::vector<std::string> renamed;
        for (auto&& [k, v] : *tbl) {
            restore(v);
            if (restored(k.str()) != k.str()) renamed.emplace_back(k.str());
        }
        for (auto& name : renamed) {
            auto it = tbl->find(name);
            toml::key key(restored(name), it->first.source());
            tbl->insert(std::move(key), std::move(it->second));
            tbl->erase(name);
        }
    }
}

} // namespace

toml::table parse_toml_text(std::string_view text, std::string_view file) {
    bool needs_swap = false;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (static_cast<unsigned char>(text[i]) < 0x80) continue;
        auto [c, len] = decode(text, i);
        if (len == 0) continue;
        if (c >= stand_in_base && c < stand_in_end) {
            // (a stand-in in the file would come back as another character)
            std::size_t line = 1 + std::count(text.begin(), text.begin() + i, '\n');
            std::size_t line_start = text.rfind('\n', i == 0 ? 0 : i - 1);
            line_start = line_start == std::string_view::npos || i == 0 ? 0 : line_start + 1;
            std::size_t column = 1;
            for (std::size_t j = line_start; j < i; ++j) column += (static_cast<unsigned char>(text[j]) & 0xC0) != 0x80;
            const std::string what = fmt::format("the private-use character U+{:04X} is not supported", unsigned(c));
            throw toml::parse_error(what.c_str(),
                                    toml::source_position{static_cast<toml::source_index>(line),
                                                          static_cast<toml::source_index>(column)},
                                    std::make_shared<const std::string>(file));
        }
        needs_swap = needs_swap || unsafe_block_index(c) >= 0;
        i += len - 1;
    }
    if (!needs_swap) return toml::parse(text, file);
    const std::string safe = swapped(text, [](char32_t c) {
        int index = unsafe_block_index(c);
        return index < 0 ? c : stand_in(c, index);
    });
    toml::table doc;
    try {
        doc = toml::parse(safe, file);
    } catch (const toml::parse_error& e) {
        const std::string what = restored(e.description());
        throw toml::parse_error(what.c_str(), e.source());
    }
    restore(doc);
    return doc;
}

} // namespace moat
