// The same decoding with Debian's msgpack-c (libmsgpack-dev, header-only
// C++), for the benchmark's comparison only: the link itself does not use it.
#include <cstring>
#include <ctime>
#include <vector>

#define MSGPACK_NO_BOOST 1
#include <msgpack/object.hpp>
#include <msgpack/unpack.hpp>

double msgpack_c_decode_mbps(const std::vector<unsigned char>& plain, std::size_t& objects)
{
    timespec a{}, b{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
    ::msgpack::unpacker u;
    objects = 0;
    for (std::size_t at = 0; at < plain.size(); at += 4096) {
        const std::size_t n = std::min<std::size_t>(4096, plain.size() - at);
        u.reserve_buffer(n);
        std::memcpy(u.buffer(), plain.data() + at, n);
        u.buffer_consumed(n);
        ::msgpack::object_handle oh;
        while (u.next(oh)) ++objects;
    }
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
    const double s = double(b.tv_sec - a.tv_sec) + double(b.tv_nsec - a.tv_nsec) * 1e-9;
    return double(plain.size()) / s / 1e6;
}
