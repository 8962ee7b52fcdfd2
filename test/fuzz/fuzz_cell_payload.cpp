// Fuzz target: a cell payload as the host parses a reply (every command,
// broadcast or not) and as the simulated ring processes a request.
#include <cstdlib>

#include "cell_packet.hpp"
#include "conversions.hpp"
#include "sim_ring.hpp"

using namespace moat::bms;
using namespace moat::bms::cell;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::span<const std::uint8_t> in(data, size);
    auto r = parse_reply(in);
    if (auto* reply = std::get_if<Reply>(&r)) {
        const auto n = reply_size(Command(reply->header.command));
        for (auto& rec : reply->records) {
            if (rec.size() != n) std::abort();
            switch (Command(reply->header.command)) {
            case Command::read_voltage_and_status: {
                auto v = decode_voltage(rec);
                if (classify(v) == Reading::value && !raw_to_volt(v.raw(), VoltScale{})) std::abort();
                break;
            }
            case Command::read_temperature: {
                auto t = decode_temperatures(rec);
                if (classify_thermistor(t.int_raw) == Reading::value && !raw_to_celsius(t.int_raw, 3950)) std::abort();
                break;
            }
            case Command::read_settings: (void)decode_settings(rec); break;
            case Command::read_pid_config: (void)decode_pid(rec); break;
            case Command::read_packet_counters: (void)decode_packet_counters(rec); break;
            default: break;
            }
        }
        (void)check_count(*reply, 4);
    }
    static sim::SimRing ring(4);
    // Each module counts one hop, modulo 256 like the firmware's u8 (a request
    // that did not start at hops 0 wraps: a fuzzer finding, kept in the corpus).
    const auto sent = decode_header(in);
    for (auto& out : ring.process(in)) {
        auto h = decode_header(out);
        if (!h || !sent || h->hops != std::uint8_t(sent->hops + 4)) std::abort();
    }
    return 0;
}
