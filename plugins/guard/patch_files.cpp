#include "patch_files.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <spawn.h>
#include <sstream>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>

#include <fmt/format.h>
#include <fmt/ranges.h>

extern char** environ;

namespace moat::guard {

namespace fs = std::filesystem;

namespace {
std::string why() { return std::strerror(errno); }

/// Owns a file descriptor.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) ::close(fd_);
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }
    int release() { return std::exchange(fd_, -1); }

private:
    int fd_;
};
} // namespace

std::optional<std::string> read_file(const fs::path& p) {
    Fd fd(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        if (errno == ENOENT) return std::nullopt;
        throw FileError(fmt::format("{}: cannot open: {}", p.string(), why()));
    }
    std::string out;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw FileError(fmt::format("{}: cannot read: {}", p.string(), why()));
        }
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

void write_file_atomic(const fs::path& p, const std::string& content) {
    std::error_code ec;
    fs::create_directories(p.parent_path(), ec);
    if (ec) throw FileError(fmt::format("{}: cannot create the directory: {}", p.parent_path().string(), ec.message()));
    mode_t mode = 0644;
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) mode = st.st_mode & 07777;
    const fs::path tmp = p.string() + ".moat-new";
    {
        Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
        if (fd.get() < 0) throw FileError(fmt::format("{}: cannot create: {}", tmp.string(), why()));
        std::size_t done = 0;
        while (done < content.size()) {
            ssize_t n = ::write(fd.get(), content.data() + done, content.size() - done);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                std::string reason = why();
                ::unlink(tmp.c_str());
                throw FileError(fmt::format("{}: cannot write: {}", tmp.string(), reason));
            }
            done += static_cast<std::size_t>(n);
        }
        ::fchmod(fd.get(), mode);
        if (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0) {
            std::string reason = why();
            ::unlink(tmp.c_str());
            throw FileError(fmt::format("{}: cannot write: {}", tmp.string(), reason));
        }
    }
    if (::rename(tmp.c_str(), p.c_str()) != 0) {
        std::string reason = why();
        ::unlink(tmp.c_str());
        throw FileError(fmt::format("{}: cannot replace: {}", p.string(), reason));
    }
}

int run_command(const std::vector<std::string>& argv) {
    if (argv.empty()) return -1;
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_t pid = 0;
    if (::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return -1;
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> split_command(const std::string& line) {
    std::vector<std::string> out;
    std::istringstream in(line);
    for (std::string w; in >> w;) out.push_back(w);
    return out;
}

bool read_only(const fs::path& dir) {
    struct statvfs vfs {};
    if (::statvfs(dir.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY)) return true;
    struct stat st {};
    return ::stat(dir.c_str(), &st) == 0 && !(st.st_mode & S_IWUSR);
}

namespace {
/// The remount command for `mode`: the given one with "rw|ro DIR" appended,
/// or by default Venus's way, remounting the root file system.
std::vector<std::string> remount_argv(const std::vector<std::string>& remount, const char* mode, const fs::path& dir) {
    if (remount.empty()) return {"mount", "-o", std::string("remount,") + mode, "/"};
    auto argv = remount;
    argv.push_back(mode);
    argv.push_back(dir.string());
    return argv;
}
} // namespace

WritableScope::WritableScope(std::vector<std::string> remount, fs::path dir)
    : remount_(std::move(remount)), dir_(std::move(dir)) {
    if (!read_only(dir_)) return;
    auto argv = remount_argv(remount_, "rw", dir_);
    int rc = run_command(argv);
    remounted_ = true;
    if (rc != 0 || read_only(dir_)) {
        restore();
        throw FileError(fmt::format("{} is read-only and '{}' did not make it writable (exit {})", dir_.string(),
                                    fmt::join(argv, " "), rc));
    }
}

bool WritableScope::restore() {
    if (!remounted_) return true;
    remounted_ = false;
    return run_command(remount_argv(remount_, "ro", dir_)) == 0;
}

WritableScope::~WritableScope() { restore(); }

} // namespace moat::guard
