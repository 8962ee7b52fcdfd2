#include "transport.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <moat/io.hpp>
#include <unistd.h>

namespace moat::bms {

namespace {
/// A watch on `fd`, which the caller has taken over: closed when it cannot be watched.
FdWatch watch_owned(Loop& loop, int fd, const std::string& name)
{
    try {
        return FdWatch(loop, fd, name);
    } catch (...) {
        ::close(fd);
        throw;
    }
}
} // namespace

struct ByteStream::Impl {
    class Reader;
    Loop& loop;
    int fd;
    bool socket = false;
    std::string name;
    FdWatch watch;
    bool polling = false;
    unsigned events = 0;
    Reader* reader = nullptr;
    std::vector<std::uint8_t> out;
    std::size_t out_at = 0;
    std::string error;

    Impl(Loop& l, int f, std::string n) : loop(l), fd(f), name(std::move(n)) {}

    void update();
    void on_ready(unsigned ready, const std::string& watch_error);
    void flush();
    // >0 bytes, 0 EOF, -1 would block; throws nothing: sets error.
    long try_read(std::span<std::uint8_t> buf);
};

class ByteStream::Impl::Reader final : public Suspension {
public:
    Reader(Impl& s, std::span<std::uint8_t> buf) : s_(s), buf_(buf) {}
    long result = 0;
    void done(long n) {
        result = n;
        if (s_.reader == this) s_.reader = nullptr;
        s_.update();
        complete();
    }
    std::span<std::uint8_t> buf() const { return buf_; }

private:
    void start() override {
        const long n = s_.try_read(buf_);
        if (n >= 0 || !s_.error.empty()) return done(n);
        s_.reader = this;
        s_.update();
    }
    void abort() override {
        if (s_.reader == this) s_.reader = nullptr;
        s_.update();
    }
    Impl& s_;
    std::span<std::uint8_t> buf_;
};

long ByteStream::Impl::try_read(std::span<std::uint8_t> buf)
{
    if (!error.empty()) return 0;
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n >= 0) return long(n);
    if (errno == EAGAIN || errno == EINTR) return -1;
    if (errno == EIO) return 0;  // a pty whose other side closed: the end of the stream
    error = fmt::format("{}: read: {}", name, std::strerror(errno));
    return 0;
}

void ByteStream::Impl::flush()
{
    while (out_at < out.size() && error.empty()) {
        const ssize_t n = socket ? ::send(fd, out.data() + out_at, out.size() - out_at, MSG_NOSIGNAL)
                                 : ::write(fd, out.data() + out_at, out.size() - out_at);
        if (n > 0) {
            out_at += std::size_t(n);
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) break;
        error = fmt::format("{}: write: {}", name, n < 0 ? std::strerror(errno) : "nothing written");
    }
    if (out_at == out.size()) {
        out.clear();
        out_at = 0;
    } else if (out_at > 65536) {
        out.erase(out.begin(), out.begin() + std::ptrdiff_t(out_at));
        out_at = 0;
    }
}

void ByteStream::Impl::update()
{
    if (!watch) return;
    const unsigned want = (reader ? FdWatch::readable : 0u) | (out.size() > out_at ? FdWatch::writable : 0u);
    if (want == events && polling == (want != 0)) return;
    events = want;
    if (!want) {
        watch.stop();
        polling = false;
        return;
    }
    try {
        watch.start(want, [this](unsigned ready, const std::string& watch_error) { on_ready(ready, watch_error); });
    } catch (const IoError& e) {
        error = fmt::format("{}: {}", name, e.what());
        if (reader) reader->done(0);
        return;
    }
    polling = true;
}

void ByteStream::Impl::on_ready(unsigned ev, const std::string& watch_error)
{
    if (!watch_error.empty()) {
        // An error on the descriptor (a hung-up tty): the watch stopped; let
        // the read see the error.
        polling = false;
        events = 0;
        ev = FdWatch::readable | (out.size() > out_at ? FdWatch::writable : 0u);
    }
    if (ev & FdWatch::writable) flush();
    if ((ev & FdWatch::readable) && reader) {
        const long n = try_read(reader->buf());
        if (n >= 0 || !error.empty()) reader->done(n);
    }
    if (!error.empty() && reader) reader->done(0);
    update();
}

ByteStream::ByteStream(Loop& loop, int fd, std::string name) : impl_(std::make_unique<Impl>(loop, fd, name)), name_(std::move(name))
{
    struct stat st{};
    if (::fstat(fd, &st) == 0) impl_->socket = S_ISSOCK(st.st_mode);
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        const std::string why = std::strerror(errno);
        ::close(fd);
        throw IoError(fmt::format("{}: {}", name_, why));
    }
    impl_->watch = watch_owned(loop, fd, name_);
}

ByteStream::~ByteStream()
{
    impl_->watch = FdWatch();
    ::close(impl_->fd);
}

Task<std::size_t> ByteStream::read(std::span<std::uint8_t> buf)
{
    if (impl_->reader) throw std::logic_error(name_ + ": two readers");
    Impl::Reader r(*impl_, buf);
    co_await r;
    if (!impl_->error.empty() && r.result == 0) throw IoError(impl_->error);
    co_return std::size_t(r.result);
}

void ByteStream::write(std::span<const std::uint8_t> bytes)
{
    if (!impl_->error.empty()) throw IoError(impl_->error);
    if (impl_->out.size() - impl_->out_at + bytes.size() > max_queued)
        throw IoError(fmt::format("{}: more than {} bytes wait to be written", name_, max_queued));
    impl_->out.insert(impl_->out.end(), bytes.begin(), bytes.end());
    impl_->flush();
    if (!impl_->error.empty()) throw IoError(impl_->error);
    impl_->update();
}

std::size_t ByteStream::queued() const { return impl_->out.size() - impl_->out_at; }

struct Listener::Impl {
    class Waiter;
    int fd;
    std::string name;
    FdWatch watch;
    Waiter* waiter = nullptr;
};

class Listener::Impl::Waiter final : public Suspension {
public:
    explicit Waiter(Impl& l) : l_(l) {}
    int fd = -1;
    std::string error;
    void attempt()
    {
        const int c = ::accept4(l_.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0 && (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)) return;
        if (c < 0) error = fmt::format("{}: accept: {}", l_.name, std::strerror(errno));
        fd = c;
        stop();
        complete();
    }

private:
    void start() override
    {
        l_.waiter = this;
        Impl* l = &l_;
        l_.watch.start(FdWatch::readable, [l](unsigned, const std::string&) {
            if (l->waiter) l->waiter->attempt();
        });
        attempt();
    }
    void abort() override { stop(); }
    void stop()
    {
        l_.waiter = nullptr;
        l_.watch.stop();
    }
    Impl& l_;
};

Listener::Listener(Loop& loop, int fd, std::string name) : impl_(std::make_unique<Impl>())
{
    impl_->fd = fd;
    impl_->name = std::move(name);
    impl_->watch = watch_owned(loop, fd, impl_->name);
}

Listener::~Listener()
{
    impl_->watch = FdWatch();
    ::close(impl_->fd);
}

Task<int> Listener::accept()
{
    Impl::Waiter w(*impl_);
    co_await w;
    if (!w.error.empty()) throw IoError(w.error);
    co_return w.fd;
}

} // namespace moat::bms
