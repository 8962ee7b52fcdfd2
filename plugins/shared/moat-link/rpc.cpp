#include "rpc.hpp"

#include <algorithm>

namespace moat::bms {

using msgpack::Array;
using msgpack::Map;
using msgpack::Value;

Path path(std::initializer_list<const char*> parts)
{
    Array a;
    for (auto* p : parts) a.emplace_back(p);
    return Value(std::move(a));
}

std::string path_name(const Value& p)
{
    if (auto* s = p.str()) return *s;
    auto* a = p.array();
    if (!a) return "?";
    std::string out;
    for (auto& e : *a) {
        if (!out.empty()) out += '.';
        out += e.str() ? *e.str() : "?";
    }
    return out;
}

struct RpcEngine::Pending {
    Event done;
    std::optional<Value> result;
    std::exception_ptr error;
    std::string path;
};

namespace {
Task<void> wait_event(Event& e) { co_await e.wait(); }
constexpr std::uint32_t max_id = 0x7FFFFFFF;
constexpr std::size_t recent_ids = 32;
} // namespace

RpcEngine::~RpcEngine()
{
    // Every caller's coroutine holds its Pending; waking them is the session's
    // job (close() before the engine goes). Nothing may still wait here.
    for (auto& [id, p] : pending_) p->done.set();
}

std::uint32_t RpcEngine::next_id()
{
    // Unique among the outstanding calls, and below 2^31 (the device's ints).
    do {
        id_ = id_ >= max_id ? 1 : id_ + 1;
    } while (pending_.count(id_));
    return id_;
}

void RpcEngine::answered(std::uint32_t id)
{
    if (recent_.size() >= recent_ids) recent_.erase(recent_.begin());
    recent_.push_back(id);
}

Task<Value> RpcEngine::call(Path p, Value data, Duration timeout)
{
    if (closed_) throw LinkDown("link down: " + close_reason_);
    const std::uint32_t id = next_id();
    auto pending = std::make_shared<Pending>();
    pending->path = path_name(p);
    Value msg(Map{{"a", std::move(p)}, {"d", std::move(data)}, {"i", id}});
    pending_[id] = pending;
    ++counters_.calls;
    try {
        send_(msg);
    } catch (...) {
        pending_.erase(id);
        throw;
    }
    bool timed_out = false;
    try {
        auto waiting = with_timeout(timeout, wait_event(pending->done));
        co_await waiting;
    } catch (const TimeoutError&) {
        timed_out = true;
    } catch (const Cancelled&) {
        // Our id is ours until erased: a late reply is then "unknown".
        if (auto it = pending_.find(id); it != pending_.end() && it->second == pending) pending_.erase(it);
        throw;
    }
    if (timed_out && !pending->done.is_set()) {
        pending_.erase(id);
        answered(id);  // a late reply is a duplicate, not a mystery
        ++counters_.timeouts;
        const auto what = fmt::format("{}: no reply within {:.3g} s", pending->path, std::chrono::duration<double>(timeout).count());
        log_.warning("{}", what);
        if (on_fault_) on_fault_(what);
        throw RpcTimeout(what);
    }
    if (pending->error) std::rethrow_exception(pending->error);
    co_return std::move(*pending->result);
}

void RpcEngine::notify(Path p, Value data)
{
    if (closed_) throw LinkDown("link down: " + close_reason_);
    send_(Value(Map{{"a", std::move(p)}, {"d", std::move(data)}}));
}

void RpcEngine::dispatch(const Value& msg)
{
    auto bad = [&](const char* why) {
        ++counters_.bad_messages;
        log_.warning("dropped a message ({}): {}", why, msg.dump(120));
    };
    if (!msg.is_map()) return bad("not a map");
    const Value* a = msg.find("a");
    const Value* i = msg.find("i");
    const Value* d = msg.find("d");
    if (a) {
        if (!a->is_str() && !a->is_array()) return bad("its path is neither a string nor a list");
        if (i && !i->integer()) return bad("its id is not an integer");
        ++counters_.notifications;
        const Value data = d ? *d : Value();
        if (!i) {
            try {
                if (handler_) handler_(*a, data, false);
            } catch (const std::exception& e) {
                log_.warning("notification {}: {}", path_name(*a), e.what());
            }
            return;
        }
        Value reply(Map{{"i", *i}});
        try {
            if (!handler_) throw RemoteError(path_name(*a), "no handler");
            reply.set("d", handler_(*a, data, true));
        } catch (const RemoteError& e) {
            reply.set("e", e.text());
        } catch (const std::exception& e) {
            reply.set("e", std::string(e.what()));
        }
        if (!closed_) send_(reply);
        return;
    }
    if (!i) return bad("neither a path nor an id");
    const auto id = i->integer();
    if (!id || *id < 0 || *id > max_id) return bad("its id is out of range");
    auto it = pending_.find(std::uint32_t(*id));
    if (it == pending_.end()) {
        if (std::find(recent_.begin(), recent_.end(), std::uint32_t(*id)) != recent_.end()) {
            ++counters_.duplicate_replies;
            log_.warning("dropped a duplicate reply for id {}", *id);
        } else {
            ++counters_.unknown_replies;
            log_.warning("dropped a reply for unknown id {}", *id);
        }
        return;
    }
    auto p = it->second;
    pending_.erase(it);
    answered(std::uint32_t(*id));
    if (const Value* e = msg.find("e")) {
        ++counters_.remote_errors;
        p->error = std::make_exception_ptr(RemoteError(p->path, e->str() ? *e->str() : e->dump(200)));
    } else {
        ++counters_.replies;
        p->result = d ? *d : Value();
    }
    p->done.set();
}

void RpcEngine::close(const std::string& reason)
{
    if (closed_) return;
    closed_ = true;
    close_reason_ = reason;
    auto pending = std::move(pending_);
    pending_.clear();
    for (auto& [id, p] : pending) {
        p->error = std::make_exception_ptr(LinkDown(fmt::format("{}: link down ({})", p->path, reason)));
        p->done.set();
    }
}

} // namespace moat::bms
