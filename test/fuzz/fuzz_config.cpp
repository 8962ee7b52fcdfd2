// Fuzz target: the configuration loader as --check-config runs it: TOML text
// → the [host] table and every instance, each plugin loaded from the build's
// plugin directory and its keys and nested tables checked by its own
// validate(). Whatever the text, the result is a configuration or one
// ConfigError that names the file; never another exception or a crash.
//
// Inputs that name plugin_dir or plugin_path are skipped: they would make
// the loader dlopen whatever library the fuzzer spells.
//
// Known finding, not fixed here (test/fuzz/pending/config/): toml++ 3.3.0
// asserts that a table header's first key character is a key character or
// a quote, so `[&x]` aborts a Debug build (and is undefined behaviour in a
// clang release build) instead of giving its syntax error. Until the fix is
// in (see the README), such inputs are skipped so the smoke run stays useful.
// Likewise a character in U+00A1..U+0499, U+2D6E..U+3167 or U+FB36..U+FEFE
// where toml++ looks for whitespace reaches its __builtin_unreachable()
// (undefined behaviour in every build): inputs with non-ASCII bytes are
// skipped too.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "host.hpp"

#include <moat/config.hpp>

namespace {

bool bad_table_header(std::string_view text)
{
    auto key_start = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
               c == '"' || c == '\'' || c == ']';
    };
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
        if (i < text.size() && text[i] == '[') {
            ++i;
            if (i < text.size() && text[i] == '[') ++i;
            while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
            if (i < text.size() && !key_start(text[i])) return true;
        }
        i = text.find('\n', i);
        if (i == std::string_view::npos) break;
        ++i;
    }
    return false;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (text.find("plugin_") != std::string_view::npos) return 0;
    if (bad_table_header(text)) return 0;
    for (unsigned char c : text)
        if (c >= 0x80) return 0;
    static const std::string path = "/tmp/moat-fuzz-config-" + std::to_string(::getpid()) + ".toml";
    {
        std::ofstream f(path, std::ios::binary | std::ios::trunc);
        f.write(text.data(), static_cast<std::streamsize>(text.size()));
    }
    try {
        auto cfg = moat::prepare_config(path, {MOAT_FUZZ_PLUGIN_DIR});
        for (auto& p : cfg.instances)
            if (p.library && p.config.instance() != p.section.name) std::abort();
    } catch (const moat::ConfigError& e) {
        if (std::string_view(e.what()).find(path) == std::string_view::npos) std::abort();
    }
    return 0;
}
