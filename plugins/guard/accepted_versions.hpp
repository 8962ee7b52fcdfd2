// Versions of a patch's target that the owner of this GX reviewed and
// accepted (`moat-victron patches accept`). The manifests list only the
// upstream files their edits were checked against; a Venus release we have
// not seen is refused until someone has read `patches diff` on the device and
// vouches for that exact file. Stored in the patch state directory, one
// version per line: NAME SHA256 LABEL...
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace moat::guard {

class AcceptedVersions {
public:
    /// Reads `file` (missing: nothing accepted). Throws FileError.
    explicit AcceptedVersions(std::filesystem::path file);

    bool has(const std::string& patch, const std::string& sha256) const;
    /// Record and write the file atomically. Throws FileError.
    void add(const std::string& patch, const std::string& sha256, const std::string& label);
    const std::filesystem::path& file() const { return file_; }

private:
    struct Entry {
        std::string patch, sha256, label;
    };
    std::filesystem::path file_;
    std::vector<Entry> entries_;
};

} // namespace moat::guard
