// A patch to a Venus OS file and its manifest (patches/<name>.toml): the
// target, the exact text edits, and the upstream versions of the target
// (SHA-256 of the unpatched file) the edits were checked against.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace moat::guard {

/// A manifest that cannot be read: the message names the file (and line).
class ManifestError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

struct PatchEdit {
    std::string find;     ///< must occur exactly once in the file
    std::string replace;
};

/// An upstream version the edits apply to.
struct KnownVersion {
    std::string sha256;  ///< of the unpatched target
    std::string label;   ///< e.g. "Venus OS v3.60 (dbus-systemcalc-py v2.256)", for people
};

struct Patch {
    std::string name;         ///< the file name without .toml
    std::string title;        ///< one line
    std::string description;  ///< what it changes and why
    bool recommended = false;
    std::string target;       ///< relative to the root: "opt/victronenergy/dbus-systemcalc-py/delegates/multi.py"
    std::string service;      ///< restarted after a change: "/service/dbus-systemcalc-py"
    std::vector<PatchEdit> edits;
    std::vector<KnownVersion> known;
    std::filesystem::path file;  ///< where the manifest was read

    bool knows(const std::string& sha256) const;
};

/// Read one manifest; throws ManifestError.
Patch load_manifest(const std::filesystem::path& file);
/// Every *.toml in `dirs` (the first directory that has a name wins), sorted by name.
/// Throws ManifestError for the first broken manifest.
std::vector<Patch> load_manifests(const std::vector<std::filesystem::path>& dirs);

} // namespace moat::guard
