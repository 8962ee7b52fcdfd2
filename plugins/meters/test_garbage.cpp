// Random and mutated bytes through every decoder: each returns a value or an
// Error and never reads outside its span (run under -DMOAT_SANITIZE=ON to
// have AddressSanitizer check the last part).
#include "block_plan.hpp"
#include "rtu.hpp"
#include "tcp.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

using namespace moat::meters;
using namespace moat::meters::modbus;
using Bytes = std::vector<std::uint8_t>;

namespace {

// Each buffer is allocated at exactly its length, so an overread is an ASan error.
Bytes random_bytes(std::mt19937& rng, std::size_t max_len)
{
    std::uniform_int_distribution<std::size_t> len(0, max_len);
    std::uniform_int_distribution<int> byte(0, 255);
    Bytes b(len(rng));
    for (auto& x : b) x = static_cast<std::uint8_t>(byte(rng));
    return b;
}

const Request requests[] = {
    Request::read_holding(0xFC02, 1), Request::read_input(0, 2),     Request::read_input(0, 125),
    Request::write_single(0x1101, 7), Request::write_multiple(10, {1, 2}), Request::echo(0x5555),
};

} // namespace

TEST_CASE("random bytes: every decoder answers, none crashes")
{
    std::mt19937 rng(20240208);
    std::size_t ok = 0;
    std::size_t longest = 0;
    for (int i = 0; i < 20000; ++i) {
        const Bytes b = random_bytes(rng, 300);
        for (const auto& req : requests) {
            ok += decode_response(req, b).ok();
            ok += rtu_decode_response(1, req, b).ok();
            ok += tcp_decode_response(1, 1, req, b).ok();
            longest = std::max(longest, rtu_response_size(req, b));
        }
        ok += decode_request(b).ok();
        ok += rtu_decode_request(b).ok();
        ok += tcp_decode_request(b).ok();
        ok += rtu_request_size(b).ok();
        ok += tcp_frame_size(b).ok();
        ok += tcp_parse(b).ok();
    }
    CHECK(longest <= max_rtu_frame_size);
    // Random bytes are almost never a valid frame; the point is that we got here.
    CHECK(ok < 20000 * 10);
}

TEST_CASE("mutated valid frames: truncations, extensions and byte flips")
{
    std::mt19937 rng(7);
    std::uniform_int_distribution<int> byte(0, 255);
    for (const auto& req : requests) {
        std::vector<std::uint16_t> regs(req.is_read() ? req.count : 0, 0x4366);
        const Bytes pdu = encode_response(req, regs);
        const Bytes rtu = rtu_frame(1, pdu);
        const Bytes tcp = tcp_frame(9, 1, pdu);
        for (const Bytes* good : {&pdu, &rtu, &tcp}) {
            for (std::size_t n = 0; n <= good->size() + 2; ++n) {
                Bytes b(good->begin(), good->begin() + static_cast<std::ptrdiff_t>(std::min(n, good->size())));
                while (b.size() < n) b.push_back(static_cast<std::uint8_t>(byte(rng)));
                b.shrink_to_fit();
                (void)decode_response(req, b);
                (void)rtu_decode_response(1, req, b);
                (void)tcp_decode_response(9, 1, req, b);
                (void)rtu_response_size(req, b);
            }
            for (int i = 0; i < 200; ++i) {
                Bytes b = *good;
                b[static_cast<std::size_t>(rng() % b.size())] = static_cast<std::uint8_t>(byte(rng));
                (void)decode_response(req, b);
                (void)rtu_decode_response(1, req, b);
                (void)tcp_decode_response(9, 1, req, b);
            }
        }
        // The unmutated frames decode.
        CHECK(decode_response(req, pdu).ok());
        CHECK(rtu_decode_response(1, req, rtu).ok());
        CHECK(tcp_decode_response(9, 1, req, tcp).ok());
    }
}

TEST_CASE("random register words: every decoded value is invalid or within its limits")
{
    std::mt19937 rng(42);
    const Limits limits;
    const std::pair<Encoding, double> kinds[] = {{Encoding::f32b, 1},  {Encoding::s32l, 10}, {Encoding::u32b, 10},
                                                 {Encoding::s32b, 100}, {Encoding::u64b, 100}, {Encoding::u16, 100}};
    for (auto q : {Quantity::voltage, Quantity::current, Quantity::power, Quantity::frequency, Quantity::energy})
        for (auto [enc, scale] : kinds) {
            Register r;
            r.path = "/x";
            r.encoding = enc;
            r.words = encoding_words(enc);
            r.scale = scale;
            r.quantity = q;
            const auto range = *limits.range(q);
            for (int i = 0; i < 2000; ++i) {
                std::vector<std::uint16_t> w(r.words);
                for (auto& x : w) x = static_cast<std::uint16_t>(rng());
                const auto v = decode(r, w, limits);
                if (v.is_valid()) {
                    REQUIRE(v.as_number());
                    CHECK(range.contains(*v.as_number()));
                }
            }
        }
}
