#include "patch_manifest.hpp"

#include <algorithm>
#include <map>

#include <fmt/format.h>
#include <fstream>
#include <moat/config.hpp>
#include <sstream>

namespace moat::guard {

namespace fs = std::filesystem;

bool Patch::knows(const std::string& sha256) const {
    return std::any_of(known.begin(), known.end(), [&](const KnownVersion& k) { return k.sha256 == sha256; });
}

namespace {

[[noreturn]] void bad(const fs::path& file, const ConfigNode& node, const std::string& what) {
    if (node.from_file()) throw ManifestError(node.location() + what);
    throw ManifestError(fmt::format("{}: {}", file.string(), what));
}

std::string text(const fs::path& file, const ConfigNode& t, std::string_view key, bool required) {
    const ConfigNode n = t.get(key);
    if (!n) {
        if (required) bad(file, t, fmt::format("'{}' is missing", key));
        return "";
    }
    auto s = n.as_string();
    if (!s) bad(file, n, fmt::format("'{}' must be a string", key));
    return *s;
}

bool is_hex64(const std::string& s) {
    return s.size() == 64 && std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

} // namespace

Patch load_manifest(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) throw ManifestError(fmt::format("{}: cannot read it", file.string()));
    std::ostringstream content;
    content << in.rdbuf();
    ConfigNode doc;
    try {
        doc = parse_toml(content.str(), file.string());
    } catch (const ConfigError& e) {
        throw ManifestError(e.what());
    }
    static const char* allowed[] = {"title", "description", "recommended", "target", "service", "edits", "known"};
    for (const auto& k : doc.keys())
        if (std::find(std::begin(allowed), std::end(allowed), k) == std::end(allowed))
            bad(file, doc.get(k), fmt::format("unknown key '{}'", k));
    Patch p;
    p.file = file;
    p.name = file.stem().string();
    p.title = text(file, doc, "title", true);
    p.description = text(file, doc, "description", true);
    p.target = text(file, doc, "target", true);
    p.service = text(file, doc, "service", false);
    if (p.target.empty() || p.target.front() == '/' || p.target.find("..") != std::string::npos)
        bad(file, doc.get("target"), "'target' must be a path relative to the root, without '..'");
    if (const ConfigNode r = doc.get("recommended")) {
        if (!r.as_bool()) bad(file, r, "'recommended' must be true or false");
        p.recommended = *r.as_bool();
    }
    const ConfigNode edits = doc.get("edits");
    if (edits.kind() != ConfigNode::Kind::array || edits.size() == 0)
        bad(file, edits, "'edits' must be a non-empty array of {find, replace}");
    for (std::size_t i = 0; i < edits.size(); ++i) {
        const ConfigNode e = edits.at(i);
        if (e.kind() != ConfigNode::Kind::table) bad(file, e, "each edit is a table {find = ..., replace = ...}");
        for (const auto& k : e.keys())
            if (k != "find" && k != "replace")
                bad(file, e.get(k), fmt::format("unknown key '{}' in an edit (find, replace; top-level keys go before "
                                                "the first [[edits]])",
                                                k));
        PatchEdit edit{text(file, e, "find", true), text(file, e, "replace", true)};
        if (edit.find.empty()) bad(file, e, "an edit's 'find' is empty");
        if (edit.find == edit.replace) bad(file, e, "an edit's 'replace' equals its 'find'");
        p.edits.push_back(std::move(edit));
    }
    if (const ConfigNode known = doc.get("known")) {
        if (known.kind() != ConfigNode::Kind::array) bad(file, known, "'known' must be an array of {sha256, label}");
        for (std::size_t i = 0; i < known.size(); ++i) {
            const ConfigNode e = known.at(i);
            if (e.kind() != ConfigNode::Kind::table) bad(file, e, "each known version is a table {sha256 = ..., label = ...}");
            for (const auto& k : e.keys())
                if (k != "sha256" && k != "label")
                    bad(file, e.get(k), fmt::format("unknown key '{}' in a known version (sha256, label)", k));
            KnownVersion kv{text(file, e, "sha256", true), text(file, e, "label", false)};
            if (!is_hex64(kv.sha256)) bad(file, e, "'sha256' must be 64 lower-case hex digits");
            p.known.push_back(std::move(kv));
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
