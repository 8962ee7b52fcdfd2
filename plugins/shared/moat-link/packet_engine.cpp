#include "packet_engine.hpp"

#include <fmt/format.h>

namespace moat::bms::cell {

using namespace std::chrono;

struct PacketEngine::Slot {
    Event done;
    std::optional<Reply> reply;
    std::optional<CellError> error;
    std::uint64_t order = 0;  ///< send order, to tell which slots an overtaking packet passed
    std::uint8_t command = 0;
    std::uint8_t start = 0;
};

namespace {

Task<void> wait_event(Event& e) { co_await e.wait(); }

} // namespace

void PacketEngine::finish(const std::shared_ptr<Slot>& slot, CellError err)
{
    if (slot->done.is_set()) return;
    slot->error = std::move(err);
    slot->done.set();
}

PacketEngine::PacketEngine(Clock& clock, Send send, PacketEngineOptions opt, Logger log)
    : clock_(clock), send_(std::move(send)), opt_(opt), log_(std::move(log))
{
}

PacketEngine::~PacketEngine() { fail_all(CellErrorKind::timeout, "packet engine gone"); }

std::size_t PacketEngine::occupied() const
{
    std::size_t n = 0;
    for (auto& s : waiting_) n += bool(s);
    return n;
}

Duration PacketEngine::pacing(const CellRequest& req) const
{
    std::size_t len = header_size;
    for (auto& r : req.records) len += r.size();
    const std::size_t modules = req.broadcast ? max_cells : std::size_t(req.count);
    const double ms = 10000.0 * double(len + modules * (reply_size(req.command) + 8)) / double(opt_.baud ? opt_.baud : 1);
    return duration_cast<Duration>(duration<double, std::milli>(ms));
}

Task<void> PacketEngine::lock()
{
    if (!locked_) {
        locked_ = true;
        co_return;
    }
    Event ev;
    auto it = lock_queue_.insert(lock_queue_.end(), &ev);
    try {
        co_await ev.wait();
    } catch (const Cancelled&) {
        if (ev.is_set()) unlock();  // handed over just before the cancel: pass it on
        else lock_queue_.erase(it);
        throw;
    }
}

void PacketEngine::unlock()
{
    if (lock_queue_.empty()) {
        locked_ = false;
        return;
    }
    Event* next = lock_queue_.front();
    lock_queue_.pop_front();
    next->set();
}

Task<Reply> PacketEngine::attempt(const CellRequest& req, const Bytes& records)
{
    co_await lock();
    struct Unlock {
        PacketEngine* e;
        ~Unlock() { e->unlock(); }
    };
    std::shared_ptr<Slot> slot;
    std::uint8_t s = 0;
    {
        Unlock guard{this};
        if (auto now = clock_.now(); next_send_ > now) co_await sleep_for(next_send_ - now);
        s = seq_;
        if (auto busy = waiting_[s]) {
            bool late = false;
            try {
                auto w = with_timeout(opt_.slot_wait, wait_event(busy->done));
                co_await w;
            } catch (const TimeoutError&) {
                late = true;
            }
            if (late && waiting_[s] == busy) {
                waiting_[s].reset();
                finish(busy, CellError(CellErrorKind::timeout, fmt::format("sequence {}: no reply", s)));
            }
        }
        seq_ = std::uint8_t((s + 1) % 8);
        slot = std::make_shared<Slot>();
        slot->order = ++send_order_;
        slot->command = std::uint8_t(req.command);
        slot->start = req.start;
        waiting_[s] = slot;

        Header h;
        h.start = req.start;
        h.broadcast = req.broadcast;
        h.command = std::uint8_t(req.command);
        h.cells = std::uint8_t(req.broadcast ? max_cells - 1 : req.count - 1);
        h.sequence = s;
        auto head = encode(h);
        Bytes payload(head.begin(), head.end());
        payload.insert(payload.end(), records.begin(), records.end());
        next_send_ = clock_.now() + pacing(req);
        ++counters_.sent;
        try {
            auto t = send_(std::move(payload));
            co_await t;
        } catch (...) {
            if (waiting_[s] == slot) waiting_[s].reset();
            throw;
        }
    }
    bool late = false;
    try {
        auto w = with_timeout(opt_.slot_wait, wait_event(slot->done));
        co_await w;
    } catch (const TimeoutError&) {
        late = true;
    } catch (const Cancelled&) {
        // Cancelling a request frees its slot: a reply for it is then a stray.
        if (waiting_[s] == slot) waiting_[s].reset();
        throw;
    }
    if (late && !slot->done.is_set()) {
        if (waiting_[s] == slot) waiting_[s].reset();
        finish(slot, CellError(CellErrorKind::timeout, fmt::format("{} at {}: no reply within {:.3g} s", to_string(req.command),
                                                                   req.start, duration<double>(opt_.slot_wait).count())));
    }
    if (slot->error) throw *slot->error;
    co_return std::move(*slot->reply);
}

Task<Reply> PacketEngine::request(CellRequest req)
{
    const std::size_t q = request_size(req.command);
    if (req.broadcast ? req.records.size() != 1 : (req.count < 1 || req.count > max_cells))
        throw CellError(CellErrorKind::bad_request, fmt::format("{}: {} records for a broadcast, or {} modules", to_string(req.command),
                                                                req.records.size(), req.count));
    if (!req.broadcast && q > 0 && req.records.size() != std::size_t(req.count))
        throw CellError(CellErrorKind::bad_request,
                        fmt::format("{}: {} records for {} modules", to_string(req.command), req.records.size(), req.count));
    if (!req.broadcast && q == 0 && !req.records.empty())
        throw CellError(CellErrorKind::bad_request, fmt::format("{} takes no request data", to_string(req.command)));
    for (auto& r : req.records)
        if (r.size() != q)
            throw CellError(CellErrorKind::bad_request, fmt::format("{}: a record of {} bytes, not {}", to_string(req.command), r.size(), q));
    Bytes records;
    for (auto& r : req.records) records.insert(records.end(), r.begin(), r.end());

    const Duration bound = opt_.ring_cells > 0 ? duration_cast<Duration>(seconds(opt_.ring_cells)) / 3 : Duration(seconds(10));
    std::optional<CellError> first;
    for (int a = 0; a < std::max(1, opt_.attempts); ++a) {
        if (a) ++counters_.retries;
        std::optional<Reply> got;
        try {
            auto t = with_timeout(bound, attempt(req, records));
            got = co_await t;
        } catch (const CellError& e) {
            if (e.kind() != CellErrorKind::timeout && e.kind() != CellErrorKind::message_lost) {
                ++counters_.errors;
                throw;
            }
            if (!first) first = e;
        } catch (const TimeoutError&) {
            if (!first) first = CellError(CellErrorKind::timeout, fmt::format("{}: attempt took over {:.3g} s", to_string(req.command),
                                                                              duration<double>(bound).count()));
        }
        if (!got) continue;
        const std::size_t expected = req.broadcast || reply_size(req.command) == 0 ? 0 : std::size_t(req.count);
        if (!(req.broadcast && reply_size(req.command) > 0))
            if (auto err = check_count(*got, expected)) {
                ++counters_.errors;
                throw *err;
            }
        co_return std::move(*got);
    }
    ++counters_.errors;
    log_.warning("{} at {}: {} attempts failed, first: {}", to_string(req.command), req.start, opt_.attempts, first->what());
    throw *first;
}

void PacketEngine::on_packet(std::span<const std::uint8_t> payload)
{
    auto h = decode_header(payload);
    if (!h) {
        ++counters_.bad_packets;
        log_.warning("dropped a ring packet of {} bytes (no header)", payload.size());
        return;
    }
    ++counters_.received;
    auto slot = waiting_[h->sequence];
    if (!slot || slot->command != h->command || slot->start != h->start) {
        ++counters_.strays;
        log_.warning("stray ring packet: sequence {}, command {} (no request waits for it)", h->sequence, h->command);
        return;
    }
    // Whatever was sent before this one and is still waiting was lost on the ring.
    for (std::uint8_t k = 0; k < waiting_.size(); ++k) {
        auto& other = waiting_[k];
        if (other && other != slot && other->order < slot->order) {
            ++counters_.lost;
            finish(other, CellError(CellErrorKind::message_lost, fmt::format("sequence {} overtaken by {}", k, h->sequence)));
            other.reset();
        }
    }
    waiting_[h->sequence].reset();
    auto r = parse_reply(payload);
    if (auto* e = std::get_if<CellError>(&r)) slot->error = *e;
    else slot->reply = std::move(std::get<Reply>(r));
    slot->done.set();
}

void PacketEngine::fail_all(CellErrorKind kind, const std::string& why)
{
    for (auto& s : waiting_)
        if (s) {
            finish(s, CellError(kind, why));
            s.reset();
        }
}

} // namespace moat::bms::cell
