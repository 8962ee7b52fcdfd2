#include "line_file.hpp"

#include <cerrno>
#include <cstdio>
#include <fcntl.h>
#include <system_error>
#include <unistd.h>

namespace moat::statusline {

namespace {

[[noreturn]] void fail(const std::string& what, const std::string& path, int err)
{
    throw std::system_error(err, std::generic_category(), what + " " + path);
}

/// Closes a file descriptor when it goes.
class Fd {
public:
    explicit Fd(int fd) : fd_(fd) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { if (fd_ >= 0) ::close(fd_); }
    int get() const { return fd_; }
    /// Close now and report the error close() gives (NFS and friends report write errors there).
    int close()
    {
        int rc = ::close(fd_);
        fd_ = -1;
        return rc == 0 ? 0 : errno;
    }

private:
    int fd_;
};

} // namespace

void LineFile::write(std::string_view line)
{
    std::string data(line);
    data += '\n';
    {
        Fd fd(::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (fd.get() < 0)
            fail("cannot create", temp_, errno);
        std::size_t done = 0;
        while (done < data.size()) {
            ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                int err = errno;
                ::unlink(temp_.c_str());
                fail("cannot write", temp_, err);
            }
            done += std::size_t(n);
        }
        if (int err = fd.close()) {
            ::unlink(temp_.c_str());
            fail("cannot write", temp_, err);
        }
    }
    if (::rename(temp_.c_str(), path_.c_str()) != 0) {
        int err = errno;
        ::unlink(temp_.c_str());
        fail("cannot rename " + temp_ + " to", path_, err);
    }
}

void LineFile::remove()
{
    ::unlink(temp_.c_str());
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT)
        fail("cannot remove", path_, errno);
}

} // namespace moat::statusline
