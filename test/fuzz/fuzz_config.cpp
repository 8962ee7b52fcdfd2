// Fuzz target: the configuration loader as --check-config runs it: TOML text
// → the [host] table and every instance, each plugin loaded from the build's
// plugin directory and its keys and nested tables checked by its own
// validate(). Whatever the text, the result is a configuration or one
// ConfigError that names the file; never another exception or a crash.
//
// Inputs that name plugin_dir or plugin_path are skipped: they would make
// the loader dlopen whatever library the fuzzer spells.
//
// Regression inputs (corpus/config/regression-*): toml++ 3.3.0's assertion
// on `[&x]` and its __builtin_unreachable() for some non-ASCII characters
// where it looks for whitespace; the loader closes both (parse_toml_text in
// core/lib/config_toml_parse.cpp), so every text goes through.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <string_view>

#include "host.hpp"

#include <moat/config.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (text.find("plugin_") != std::string_view::npos) return 0;
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
