// What the two halves of the Monitor share (monitor.cpp: finding services,
// scanning them and following their signals; monitor_access.cpp: what a
// plugin calls, to read, observe, wait and write): the records of the
// followed services and the observers' registry.
#pragma once

#include "moat/monitor.hpp"

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

namespace moat::monitor_detail {

/// The observer kinds (Subscription::Registry counts each).
enum Kind { change_event = 0, added_event = 1, removed_event = 2 };

} // namespace moat::monitor_detail

namespace moat {

struct Subscription::Registry {
    struct Entry {
        int kind;
        std::string pattern, path;
        Monitor::ChangeFn change;
        Monitor::ServiceFn service;
        Loop::CallbackOrigin origin;  ///< who subscribed: answers for the observer's exceptions
    };
    std::map<std::uint64_t, std::shared_ptr<Entry>> entries;
    std::uint64_t next = 1;
    std::size_t count[3] = {0, 0, 0};
};

struct Monitor::Item {
    Value value;
    std::string text;
    TimePoint updated{};
    bool seen = false;   ///< set by a signal or the scan; a scan never overwrites it
    bool stale = false;  ///< its max age passed without an update: reads as invalid
    Timer expiry;
    const Value& effective() const {
        static const Value none;
        return stale ? none : value;
    }
};

struct Monitor::Service {
    std::string name, owner;
    std::uint64_t id;  ///< tells a reply for this record from one for an earlier owner
    bool ready = false;
    std::unordered_map<std::string, Item> items;
};

struct Monitor::Event {
    int kind;
    ServiceInfo info;  ///< for a change: only the name
    std::string path;
    Value value;
};

struct Monitor::PendingCall {
    std::unique_ptr<sdbus::IProxy> proxy;
    bool finished = false;
};

} // namespace moat
