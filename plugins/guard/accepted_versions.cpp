#include "accepted_versions.hpp"

#include <sstream>

#include "patch_files.hpp"

namespace moat::guard {

AcceptedVersions::AcceptedVersions(std::filesystem::path file) : file_(std::move(file)) {
    auto text = read_file(file_);
    if (!text) return;
    std::istringstream lines(*text);
    for (std::string line; std::getline(lines, line);) {
        std::istringstream words(line);
        Entry e;
        if (!(words >> e.patch >> e.sha256)) continue;  // blank or hand-edited: ignored, never trusted
        std::getline(words >> std::ws, e.label);
        entries_.push_back(std::move(e));
    }
}

bool AcceptedVersions::has(const std::string& patch, const std::string& sha256) const {
    for (const Entry& e : entries_)
        if (e.patch == patch && e.sha256 == sha256) return true;
    return false;
}

void AcceptedVersions::add(const std::string& patch, const std::string& sha256, const std::string& label) {
    if (has(patch, sha256)) return;
    entries_.push_back({patch, sha256, label});
    std::string text;
    for (const Entry& e : entries_) text += e.patch + " " + e.sha256 + " " + e.label + "\n";
    write_file_atomic(file_, text);
}

} // namespace moat::guard
