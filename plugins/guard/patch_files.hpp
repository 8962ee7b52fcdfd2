// The file side of the patch manager: reading and atomically replacing
// files, making a read-only root writable for a moment, running svc.
#pragma once

#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace moat::guard {

/// A file operation that failed: the message names the file and the reason.
class FileError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// The whole file, or nullopt when it does not exist; throws FileError otherwise.
std::optional<std::string> read_file(const std::filesystem::path& p);
/// Replace `p` by `content` atomically (a temporary file beside it, fsync,
/// rename), keeping the old file's mode. Throws FileError.
void write_file_atomic(const std::filesystem::path& p, const std::string& content);

/// Run argv (no shell); its exit status, or -1 when it could not be started.
int run_command(const std::vector<std::string>& argv);
/// Split a command line at spaces (no quoting).
std::vector<std::string> split_command(const std::string& line);

/// True when `dir` cannot be written: its file system is mounted read-only,
/// or the directory has no write permission for its owner (what a test can
/// set up without mounting).
bool read_only(const std::filesystem::path& dir);

/// Makes a read-only directory writable for its lifetime: runs
/// `remount rw <dir>` when needed and `remount ro <dir>` at the end (only if
/// it ran the first). Throws FileError when the directory stays read-only.
class WritableScope {
public:
    WritableScope(std::vector<std::string> remount, std::filesystem::path dir);
    ~WritableScope();
    WritableScope(const WritableScope&) = delete;
    WritableScope& operator=(const WritableScope&) = delete;
    bool remounted() const { return remounted_; }
    /// Put it back now; false when the command failed.
    bool restore();

private:
    std::vector<std::string> remount_;
    std::filesystem::path dir_;
    bool remounted_ = false;
};

} // namespace moat::guard
