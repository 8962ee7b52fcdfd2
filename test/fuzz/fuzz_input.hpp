// Reads typed values off a fuzz input, front to back; past the end every
// read gives zeros, so a target never has to check what is left.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>

namespace moat::fuzz {

class FuzzInput {
public:
    FuzzInput(const std::uint8_t* data, std::size_t size) : rest_(data, size) {}

    bool empty() const { return rest_.empty(); }
    std::size_t size() const { return rest_.size(); }
    std::span<const std::uint8_t> rest() const { return rest_; }

    std::uint8_t byte()
    {
        if (rest_.empty()) return 0;
        std::uint8_t b = rest_.front();
        rest_ = rest_.subspan(1);
        return b;
    }
    bool flag() { return byte() & 1; }
    /// A value in 0..n-1 (n > 0).
    std::size_t pick(std::size_t n) { return byte() % n; }

    template <class T> T raw()
    {
        unsigned char b[sizeof(T)] = {};
        const std::size_t n = rest_.size() < sizeof(T) ? rest_.size() : sizeof(T);
        std::memcpy(b, rest_.data(), n);
        rest_ = rest_.subspan(n);
        T out;
        std::memcpy(&out, b, sizeof(T));
        return out;
    }

    /// Bytes up to a 0 byte (dropped) or the end, at most `max`.
    std::string text(std::size_t max = 64)
    {
        std::string out;
        while (!rest_.empty() && out.size() < max) {
            char c = static_cast<char>(byte());
            if (c == 0) break;
            out += c;
        }
        return out;
    }

    /// The next `n` bytes (fewer at the end).
    std::span<const std::uint8_t> take(std::size_t n)
    {
        if (n > rest_.size()) n = rest_.size();
        auto out = rest_.first(n);
        rest_ = rest_.subspan(n);
        return out;
    }

private:
    std::span<const std::uint8_t> rest_;
};

} // namespace moat::fuzz
