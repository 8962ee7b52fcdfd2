// The benchmark catalogue in its TSV form (bench-contract.md, "Catalogue
// format"): PATH<TAB>TYPE<TAB>VALUE<TAB>TEXTFORMAT per item, '#' comments,
// '#dynamic<TAB>PATH' lines naming the updated paths in order.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

struct CatalogueItem {
    std::string path;
    char type = 'n';  ///< i, x, d, s or n (invalid)
    std::string value;
    std::string format;  ///< printf format for the text; empty = default text
};

struct Catalogue {
    std::vector<CatalogueItem> items;
    std::vector<std::string> dynamic;
};

inline std::vector<std::string> split_tabs(const std::string& line) {
    std::vector<std::string> out;
    std::string::size_type start = 0;
    for (;;) {
        auto tab = line.find('\t', start);
        out.push_back(line.substr(start, tab == std::string::npos ? std::string::npos : tab - start));
        if (tab == std::string::npos) return out;
        start = tab + 1;
    }
}

/// Reads a TSV catalogue; throws std::runtime_error naming the file and line.
inline Catalogue read_catalogue(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw std::runtime_error("cannot read the catalogue " + file);
    Catalogue c;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty()) continue;
        auto f = split_tabs(line);
        if (line[0] == '#') {
            if (f.size() == 2 && f[0] == "#dynamic") c.dynamic.push_back(f[1]);
            continue;
        }
        if (f.size() < 3 || f[1].size() != 1 || std::string("ixdsn").find(f[1][0]) == std::string::npos)
            throw std::runtime_error(file + ":" + std::to_string(n) + ": not PATH<TAB>TYPE<TAB>VALUE<TAB>FORMAT");
        c.items.push_back({f[0], f[1][0], f[2], f.size() > 3 ? f[3] : std::string()});
    }
    return c;
}

/// The environment variable, or throws naming it.
inline std::string require_env(const char* name) {
    const char* v = std::getenv(name);
    if (!v || !*v) throw std::runtime_error(std::string("the environment variable ") + name + " is not set");
    return v;
}

inline long env_long(const char* name, long fallback) {
    const char* v = std::getenv(name);
    if (!v || !*v) return fallback;
    char* end = nullptr;
    long r = std::strtol(v, &end, 10);
    if (*end) throw std::runtime_error(std::string(name) + " is not an integer: " + v);
    return r;
}

/// The bus to use: BENCH_BUS_ADDRESS, else the session bus when its address
/// is set, else the system bus (as velib chooses).
inline std::string bench_bus_spec() {
    if (const char* a = std::getenv("BENCH_BUS_ADDRESS"); a && *a) return a;
    if (const char* a = std::getenv("DBUS_SESSION_BUS_ADDRESS"); a && *a) return "session";
    return "system";
}

} // namespace bench
