// Fuzz target: the guarded and the plain stream. Feeding the input at once or
// byte by byte gives the same events; nothing is held beyond the bounds.
#include <cstdlib>

#include "frame_stream.hpp"

using namespace moat::bms;

namespace {

std::string render(const std::vector<StreamEvent>& evs)
{
    std::string out;
    for (auto& e : evs) {
        if (auto* m = std::get_if<StreamMessage>(&e)) out += "M" + m->value.dump(1000) + "\n";
        else if (auto* l = std::get_if<ConsoleLine>(&e)) out += (l->truncated ? "T" : "L") + l->text + "\n";
        else out += "E\n";
    }
    return out;
}

void check(bool guarded, std::span<const std::uint8_t> in)
{
    const msgpack::Limits limits{.max_bytes = 1024, .max_depth = 8, .max_elements = 256};
    FrameStream whole(guarded, limits), bytewise(guarded, limits);
    auto a = whole.feed(in);
    std::vector<StreamEvent> b;
    for (std::size_t i = 0; i < in.size(); ++i) {
        auto evs = bytewise.feed(in.subspan(i, 1));
        for (auto& e : evs) b.push_back(std::move(e));
        if (bytewise.buffered() > limits.max_bytes + console_line_max + 1) std::abort();
    }
    if (!guarded) {
        // Plain: an error drops the whole buffer, so only the prefix up to the first error must agree.
        return;
    }
    if (render(a) != render(b)) std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    check(true, {data, size});
    check(false, {data, size});
    return 0;
}
