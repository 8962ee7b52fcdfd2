#include "patch_manifest.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <toml++/toml.h>

namespace moat::guard {

namespace fs = std::filesystem;

bool Patch::knows(const std::string& sha256) const {
    return std::any_of(known.begin(), known.end(), [&](const KnownVersion& k) { return k.sha256 == sha256; });
}

namespace {

[[noreturn]] void bad(const fs::path& file, const toml::node* node, const std::string& what) {
    if (node && node->source().begin.line)
        throw ManifestError(fmt::format("{}:{}: {}", file.string(), node->source().begin.line, what));
    throw ManifestError(fmt::format("{}: {}", file.string(), what));
}

std::string text(const fs::path& file, const toml::table& t, std::string_view key, bool required) {
    const toml::node* n = t.get(key);
    if (!n) {
        if (required) bad(file, &t, fmt::format("'{}' is missing", key));
        return "";
    }
    auto s = n->value<std::string>();
    if (!s || !n->is_string()) bad(file, n, fmt::format("'{}' must be a string", key));
    return *s;
}

bool is_hex64(const std::string& s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

} // namespace

Patch load_manifest(const fs::path& file) {
    toml::table doc;
    try {
        doc = toml::parse_file(file.string());
    } catch (const toml::parse_error& e) {
        throw ManifestError(fmt::format("{}:{}: {}", file.string(), e.source().begin.line, e.description()));
    }
    static const char* allowed[] = {"title", "description", "recommended", "target", "service", "edits", "known"};
    for (auto& [k, v] : doc)
        if (std::find(std::begin(allowed), std::end(allowed), k.str()) == std::end(allowed))
            bad(file, &v, fmt::format("unknown key '{}'", k.str()));
    Patch p;
    p.file = file;
    p.name = file.stem().string();
    p.title = text(file, doc, "title", true);
    p.description = text(file, doc, "description", true);
    p.target = text(file, doc, "target", true);
    p.service = text(file, doc, "service", false);
    if (p.target.empty() || p.target.front() == '/' || p.target.find("..") != std::string::npos)
        bad(file, doc.get("target"), "'target' must be a path relative to the root, without '..'");
    if (const toml::node* r = doc.get("recommended")) {
        if (!r->is_boolean()) bad(file, r, "'recommended' must be true or false");
        p.recommended = *r->value<bool>();
    }
    const toml::array* edits = doc.get_as<toml::array>("edits");
    if (!edits || edits->empty()) bad(file, doc.get("edits"), "'edits' must be a non-empty array of {find, replace}");
    for (const toml::node& e : *edits) {
        const toml::table* t = e.as_table();
        if (!t) bad(file, &e, "each edit is a table {find = ..., replace = ...}");
        for (auto& [k, v] : *t)
            if (k.str() != "find" && k.str() != "replace")
                bad(file, &v, fmt::format("unknown key '{}' in an edit (find, replace; top-level keys go before "
                                          "the first [[edits]])",
                                          k.str()));
        PatchEdit edit{text(file, *t, "find", true), text(file, *t, "replace", true)};
        if (edit.find.empty()) bad(file, &e, "an edit's 'find' is empty");
        if (edit.find == edit.replace) bad(file, &e, "an edit's 'replace' equals its 'find'");
        p.edits.push_back(std::move(edit));
    }
    if (const toml::node* known = doc.get("known")) {
        const toml::array* a = known->as_array();
        if (!a) bad(file, known, "'known' must be an array of {sha256, label}");
        for (const toml::node& e : *a) {
            const toml::table* t = e.as_table();
            if (!t) bad(file, &e, "each known version is a table {sha256 = ..., label = ...}");
            for (auto& [k, v] : *t)
                if (k.str() != "sha256" && k.str() != "label")
                    bad(file, &v, fmt::format("unknown key '{}' in a known version (sha256, label)", k.str()));
            KnownVersion k{text(file, *t, "sha256", true), text(file, *t, "label", false)};
            if (!is_hex64(k.sha256)) bad(file, &e, "'sha256' must be 64 lower-case hex digits");
            p.known.push_back(std::move(k));
        }
    }
    return p;
}

std::vector<Patch> load_manifests(const std::vector<fs::path>& dirs) {
    std::map<std::string, Patch> by_name;
    for (const fs::path& dir : dirs) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) continue;
        std::vector<fs::path> files;
        for (const auto& entry : fs::directory_iterator(dir))
            if (entry.path().extension() == ".toml") files.push_back(entry.path());
        std::sort(files.begin(), files.end());
        for (const fs::path& f : files)
            if (!by_name.count(f.stem().string())) by_name.emplace(f.stem().string(), load_manifest(f));
    }
    std::vector<Patch> out;
    for (auto& [_, p] : by_name) out.push_back(std::move(p));
    return out;
}

} // namespace moat::guard
