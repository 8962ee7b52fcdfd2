#include "transport.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

namespace moat::bms {

namespace {
// The uv handle outlives the stream until its close callback: it lives apart.
struct Poll {
    uv_poll_t handle{};
};
} // namespace

struct ByteStream::Impl {
    class Reader;
    Loop& loop;
    int fd;
    bool socket = false;
    std::string name;
    std::unique_ptr<Poll> poll;
    bool polling = false;
    int events = 0;
    Reader* reader = nullptr;
    std::vector<std::uint8_t> out;
    std::size_t out_at = 0;
    std::string error;

    Impl(Loop& l, int f, std::string n) : loop(l), fd(f), name(std::move(n)) {}

    void update();
    static void on_poll(uv_poll_t* h, int status, int events);
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
    if (!poll) return;
    const int want = (reader ? UV_READABLE : 0) | (out.size() > out_at ? UV_WRITABLE : 0);
    if (want == events && polling == (want != 0)) return;
    events = want;
    if (!want) {
        uv_poll_stop(&poll->handle);
        polling = false;
        return;
    }
    if (int rc = uv_poll_start(&poll->handle, want, &Impl::on_poll); rc != 0) {
        error = fmt::format("{}: poll: {}", name, uv_strerror(rc));
        if (reader) reader->done(0);
        return;
    }
    polling = true;
}

void ByteStream::Impl::on_poll(uv_poll_t* h, int status, int ev)
{
    auto* s = static_cast<Impl*>(h->data);
    if (status < 0) {
        // An error on the descriptor (a hung-up tty): let the read see it.
        ev = UV_READABLE | (s->out.size() > s->out_at ? UV_WRITABLE : 0);
    }
    if (ev & UV_WRITABLE) s->flush();
    if ((ev & (UV_READABLE | UV_DISCONNECT)) && s->reader) {
        const long n = s->try_read(s->reader->buf());
        if (n >= 0 || !s->error.empty()) s->reader->done(n);
    }
    if (!s->error.empty() && s->reader) s->reader->done(0);
    s->update();
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
    impl_->poll = std::make_unique<Poll>();
    if (int rc = uv_poll_init(loop.uv(), &impl_->poll->handle, fd); rc != 0) {
        ::close(fd);
        throw IoError(fmt::format("{}: poll: {}", name_, uv_strerror(rc)));
    }
    impl_->poll->handle.data = impl_.get();
}

ByteStream::~ByteStream()
{
    if (impl_->poll) {
        uv_poll_stop(&impl_->poll->handle);
        auto* raw = impl_->poll.release();
        raw->handle.data = raw;
        uv_close(reinterpret_cast<uv_handle_t*>(&raw->handle), [](uv_handle_t* h) {
            std::unique_ptr<Poll> owned(static_cast<Poll*>(h->data));
        });
    }
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
    std::unique_ptr<Poll> poll;
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
        uv_poll_start(&l_.poll->handle, UV_READABLE, [](uv_poll_t* h, int, int) {
            auto* l = static_cast<Impl*>(h->data);
            if (l->waiter) l->waiter->attempt();
        });
        attempt();
    }
    void abort() override { stop(); }
    void stop()
    {
        l_.waiter = nullptr;
        uv_poll_stop(&l_.poll->handle);
    }
    Impl& l_;
};

Listener::Listener(Loop& loop, int fd, std::string name) : impl_(std::make_unique<Impl>())
{
    impl_->fd = fd;
    impl_->name = std::move(name);
    impl_->poll = std::make_unique<Poll>();
    if (int rc = uv_poll_init(loop.uv(), &impl_->poll->handle, fd); rc != 0) {
        ::close(fd);
        throw IoError(fmt::format("{}: poll: {}", impl_->name, uv_strerror(rc)));
    }
    impl_->poll->handle.data = impl_.get();
}

Listener::~Listener()
{
    uv_poll_stop(&impl_->poll->handle);
    auto* raw = impl_->poll.release();
    raw->handle.data = raw;
    uv_close(reinterpret_cast<uv_handle_t*>(&raw->handle), [](uv_handle_t* h) { std::unique_ptr<Poll> owned(static_cast<Poll*>(h->data)); });
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
