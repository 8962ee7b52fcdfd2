// The floor of the benchmark: the same roles as bench-service and
// bench-consumer (bench-contract.md) on plain libsystemd sd-bus and sd-event,
// with nothing but what the contract asks for, plus a latency probe client.
//
//   bench-floor service    same environment and signals as bench-service
//   bench-floor consumer   same environment and output as bench-consumer
//   bench-floor probe DEST PATH METHOD N
//                          N sequential calls (interface BusItem, or the one
//                          METHOD names: org.freedesktop.DBus.Peer.Ping), prints
//                          {"n":..,"p50_us":..,"p90_us":..,"p99_us":..,"max_us":..}
//
// The service exports every item through one fallback handler on `/`
// (GetValue, GetText, SetValue -> 1 on items; GetItems, GetValue, GetText on `/`);
// sd-bus answers Peer.Ping and Introspect itself. Tree nodes are not served.
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "catalogue.hpp"

namespace {

constexpr const char* iface = "com.victronenergy.BusItem";

// ---- values --------------------------------------------------------------

struct Val {
    char type = 'n';  // i x d s n
    std::int64_t i = 0;
    double d = 0;
    std::string s;
};

std::string py_repr(double v) {
    if (std::isnan(v)) return "nan";
    if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
    char buf[40];
    for (int p = 1; p <= 17; ++p) {
        std::snprintf(buf, sizeof buf, "%.*g", p, v);
        if (std::strtod(buf, nullptr) == v) break;
    }
    std::string r = buf;
    if (r.find_first_of(".en") == std::string::npos) r += ".0";
    return r;
}

std::string render(const Val& v, const std::string& fmt) {
    if (v.type == 'n') return "---";
    if (fmt.empty()) {
        if (v.type == 'd') return py_repr(v.d);
        if (v.type == 's') return v.s;
        return std::to_string(v.i);
    }
    auto conv = fmt.find_last_of("diouxXeEfFgG");
    bool integer = conv != std::string::npos && std::strchr("diouxX", fmt[conv]);
    char buf[128];
    if (v.type == 's') return v.s;
    if (integer) std::snprintf(buf, sizeof buf, fmt.c_str(), v.type == 'd' ? int(v.d) : int(v.i));
    else std::snprintf(buf, sizeof buf, fmt.c_str(), v.type == 'd' ? v.d : double(v.i));
    return buf;
}

int append_value(sd_bus_message* m, const Val& v) {
    switch (v.type) {
    case 'i': return sd_bus_message_append(m, "v", "i", std::int32_t(v.i));
    case 'x': return sd_bus_message_append(m, "v", "x", v.i);
    case 'd': return sd_bus_message_append(m, "v", "d", v.d);
    case 's': return sd_bus_message_append(m, "v", "s", v.s.c_str());
    default: return sd_bus_message_append(m, "v", "ai", 0);
    }
}

/// {"Value": v, "Text": v(s)} as a{sv}.
int append_entry(sd_bus_message* m, const Val& v, const std::string& text) {
    int r = sd_bus_message_open_container(m, 'a', "{sv}");
    if (r >= 0) r = sd_bus_message_open_container(m, 'e', "sv");
    if (r >= 0) r = sd_bus_message_append(m, "s", "Value");
    if (r >= 0) r = append_value(m, v);
    if (r >= 0) r = sd_bus_message_close_container(m);
    if (r >= 0) r = sd_bus_message_append(m, "{sv}", "Text", "s", text.c_str());
    if (r >= 0) r = sd_bus_message_close_container(m);
    return r;
}

/// Reads one variant's value; skips what it does not know.
int read_variant(sd_bus_message* m, Val& out) {
    char type;
    const char* contents;
    int r = sd_bus_message_peek_type(m, &type, &contents);
    if (r <= 0) return r;
    if (!contents) return -EINVAL;
    switch (contents[0]) {
    case 'i': {
        std::int32_t x;
        r = sd_bus_message_read(m, "v", "i", &x);
        out.type = 'i';
        out.i = x;
        return r;
    }
    case 'x': out.type = 'x'; return sd_bus_message_read(m, "v", "x", &out.i);
    case 'd': out.type = 'd'; return sd_bus_message_read(m, "v", "d", &out.d);
    case 's': {
        const char* s;
        r = sd_bus_message_read(m, "v", "s", &s);
        if (r >= 0) { out.type = 's'; out.s = s; }
        return r;
    }
    default: out.type = 'n'; return sd_bus_message_skip(m, "v");
    }
}

int env_bus(sd_bus** bus) {
    int r = sd_bus_new(bus);
    if (r < 0) return r;
    std::string addr = std::getenv("BENCH_BUS_ADDRESS") ? std::getenv("BENCH_BUS_ADDRESS")
                       : std::getenv("DBUS_SESSION_BUS_ADDRESS") ? std::getenv("DBUS_SESSION_BUS_ADDRESS")
                       : "unix:path=/var/run/dbus/system_bus_socket";
    if ((r = sd_bus_set_address(*bus, addr.c_str())) < 0) return r;
    if ((r = sd_bus_set_bus_client(*bus, 1)) < 0) return r;
    return sd_bus_start(*bus);
}

int die(const char* what, int r) {
    std::fprintf(stderr, "bench-floor: %s: %s\n", what, std::strerror(-r));
    return 1;
}

// ---- service ---------------------------------------------------------------

struct Item {
    Val v;
    std::string format;
    std::string text;
};

struct Service {
    sd_bus* bus = nullptr;
    sd_event* event = nullptr;
    std::map<std::string, Item> items;  // sorted: GetItems in path order
    struct Dyn {
        const std::string* path;
        Item* item;
        double base;
    };
    std::vector<Dyn> dynamic;
    long k = 0, interval_ms = 0, ticks = 0, pending = 0;
    std::uint64_t t = 0, next_usec = 0;
    sd_event_source* defer = nullptr;

    void tick() {
        ++t;
        sd_bus_message* m = nullptr;
        int r = sd_bus_message_new_signal(bus, &m, "/", iface, "ItemsChanged");
        if (r >= 0) r = sd_bus_message_open_container(m, 'a', "{sa{sv}}");
        const std::size_t n = std::min<std::size_t>(std::size_t(k), dynamic.size());
        for (std::size_t j = 0; j < n && r >= 0; ++j) {
            Item& it = *dynamic[j].item;
            it.v.d = dynamic[j].base + 0.001 * double(t);
            it.text = render(it.v, it.format);
            const char* path = dynamic[j].path->c_str();
            r = sd_bus_message_open_container(m, 'e', "sa{sv}");
            if (r >= 0) r = sd_bus_message_append(m, "s", path);
            if (r >= 0) r = append_entry(m, it.v, it.text);
            if (r >= 0) r = sd_bus_message_close_container(m);
        }
        if (r >= 0) r = sd_bus_message_close_container(m);
        if (r >= 0) r = sd_bus_send(bus, m, nullptr);
        if (r < 0) std::fprintf(stderr, "bench-floor: tick: %s\n", std::strerror(-r));
        sd_bus_message_unref(m);
    }
};

int on_call(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* svc = static_cast<Service*>(userdata);
    const char* in = sd_bus_message_get_interface(m);
    if (in && std::strcmp(in, iface) != 0) return 0;  // Introspect, Properties: sd-bus
    const char* member = sd_bus_message_get_member(m);
    std::string path = sd_bus_message_get_path(m);
    sd_bus_message* reply = nullptr;
    int r;
    if (path == "/") {
        bool items = std::strcmp(member, "GetItems") == 0;
        bool value = std::strcmp(member, "GetValue") == 0;
        bool text = std::strcmp(member, "GetText") == 0;
        if (!items && !value && !text) return 0;
        if ((r = sd_bus_message_new_method_return(m, &reply)) < 0) return r;
        if (value) {
            r = sd_bus_message_open_container(reply, 'v', "a{sv}");
            if (r >= 0) r = sd_bus_message_open_container(reply, 'a', "{sv}");
        } else if (text) {
            r = sd_bus_message_open_container(reply, 'v', "a{ss}");
            if (r >= 0) r = sd_bus_message_open_container(reply, 'a', "{ss}");
        } else {
            r = sd_bus_message_open_container(reply, 'a', "{sa{sv}}");
        }
        for (auto& [p, it] : svc->items) {
            if (r < 0) break;
            if (value) {
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r >= 0) r = sd_bus_message_append(reply, "s", p.c_str() + 1);
                if (r >= 0) r = append_value(reply, it.v);
            } else if (text) {
                r = sd_bus_message_append(reply, "{ss}", p.c_str() + 1, it.text.c_str());
                continue;
            } else {
                r = sd_bus_message_open_container(reply, 'e', "sa{sv}");
                if (r >= 0) r = sd_bus_message_append(reply, "s", p.c_str());
                if (r >= 0) r = append_entry(reply, it.v, it.text);
            }
            if (r >= 0) r = sd_bus_message_close_container(reply);
        }
        if (r >= 0) r = sd_bus_message_close_container(reply);
        if ((value || text) && r >= 0) r = sd_bus_message_close_container(reply);
    } else {
        auto f = svc->items.find(path);
        if (f == svc->items.end()) return 0;
        if ((r = sd_bus_message_new_method_return(m, &reply)) < 0) return r;
        if (std::strcmp(member, "GetValue") == 0) r = append_value(reply, f->second.v);
        else if (std::strcmp(member, "GetText") == 0) r = sd_bus_message_append(reply, "s", f->second.text.c_str());
        else if (std::strcmp(member, "SetValue") == 0) r = sd_bus_message_append(reply, "i", 1);
        else {
            sd_bus_message_unref(reply);
            return 0;
        }
    }
    if (r >= 0) r = sd_bus_send(nullptr, reply, nullptr);
    sd_bus_message_unref(reply);
    return r < 0 ? r : 1;
}

int on_defer(sd_event_source* s, void* userdata) {
    auto* svc = static_cast<Service*>(userdata);
    if (svc->pending > 0) {
        --svc->pending;
        svc->tick();  // one tick per loop iteration
    }
    if (svc->pending == 0) sd_event_source_set_enabled(s, SD_EVENT_OFF);
    return 0;
}

int on_timer(sd_event_source* s, std::uint64_t, void* userdata) {
    auto* svc = static_cast<Service*>(userdata);
    svc->tick();
    svc->next_usec += std::uint64_t(svc->interval_ms) * 1000u;
    sd_event_source_set_time(s, svc->next_usec);
    return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

int on_usr1(sd_event_source*, const signalfd_siginfo*, void* userdata) {
    auto* svc = static_cast<Service*>(userdata);
    if (svc->interval_ms == 0 && svc->ticks > 0 && svc->k > 0) {
        svc->pending += svc->ticks;
        sd_event_source_set_enabled(svc->defer, SD_EVENT_ON);
    }
    return 0;
}

int run_service() {
    Service svc;
    std::string name;
    bench::Catalogue cat;
    try {
        name = bench::require_env("BENCH_SERVICE");
        svc.k = bench::env_long("BENCH_UPDATE_PATHS", 0);
        svc.interval_ms = bench::env_long("BENCH_UPDATE_INTERVAL_MS", 0);
        svc.ticks = bench::env_long("BENCH_UPDATE_TICKS", 0);
        cat = bench::read_catalogue(bench::require_env("BENCH_CATALOGUE_TSV"));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-floor: %s\n", e.what());
        return 2;
    }
    for (auto& c : cat.items) {
        Item it;
        it.v.type = c.type;
        if (c.type == 'i' || c.type == 'x') it.v.i = std::stoll(c.value);
        else if (c.type == 'd') it.v.d = std::stod(c.value);
        else if (c.type == 's') it.v.s = c.value;
        it.format = c.format;
        it.text = render(it.v, it.format);
        svc.items.emplace(c.path, std::move(it));
    }
    for (auto& p : cat.dynamic) {
        auto f = svc.items.find(p);
        if (f == svc.items.end() || f->second.v.type != 'd') {
            std::fprintf(stderr, "bench-floor: dynamic path %s is not a double item\n", p.c_str());
            return 2;
        }
        svc.dynamic.push_back({&f->first, &f->second, f->second.v.d});
    }

    int r = env_bus(&svc.bus);
    if (r < 0) return die("connecting", r);
    if ((r = sd_event_default(&svc.event)) < 0) return die("sd_event_default", r);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGUSR1);
    sigprocmask(SIG_BLOCK, &ss, nullptr);
    sd_event_add_signal(svc.event, nullptr, SIGTERM, nullptr, nullptr);  // NULL handler: exit the loop
    sd_event_add_signal(svc.event, nullptr, SIGINT, nullptr, nullptr);
    sd_event_add_signal(svc.event, nullptr, SIGUSR1, on_usr1, &svc);
    sd_event_add_defer(svc.event, &svc.defer, on_defer, &svc);
    sd_event_source_set_enabled(svc.defer, SD_EVENT_OFF);
    if ((r = sd_bus_attach_event(svc.bus, svc.event, 0)) < 0) return die("sd_bus_attach_event", r);
    if ((r = sd_bus_add_fallback(svc.bus, nullptr, "/", on_call, &svc)) < 0) return die("sd_bus_add_fallback", r);
    if ((r = sd_bus_request_name(svc.bus, name.c_str(), 0)) < 0) {
        std::fprintf(stderr, "bench-floor: cannot own %s: %s\n", name.c_str(), std::strerror(-r));
        return r == -EEXIST ? 3 : 1;
    }
    if (svc.k > 0 && svc.interval_ms > 0) {
        sd_event_now(svc.event, CLOCK_MONOTONIC, &svc.next_usec);
        svc.next_usec += std::uint64_t(svc.interval_ms) * 1000u;
        sd_event_add_time(svc.event, nullptr, CLOCK_MONOTONIC, svc.next_usec, 0, on_timer, &svc);
    }
    r = sd_event_loop(svc.event);
    sd_bus_flush_close_unref(svc.bus);
    sd_event_unref(svc.event);
    return r < 0 ? die("sd_event_loop", r) : 0;
}

// ---- consumer ----------------------------------------------------------------

struct Consumer {
    sd_bus* bus = nullptr;
    std::string prefix;
    long expect = 0, paths = 0;
    std::map<std::string, std::map<std::string, Val>> services;  // name -> path -> value
    std::map<std::string, std::string> owners;                   // unique name -> name
    std::map<std::string, bool> asked;
    bool ready = false;

    void check() {
        if (ready) return;
        long n = 0, values = 0;
        for (auto& [name, vals] : services) {
            if (vals.empty()) continue;
            ++n;
            values += long(vals.size());
        }
        if (n >= expect && values >= expect * paths) {
            ready = true;
            std::printf("READY %ld %ld\n", n, values);
            std::fflush(stdout);
        }
    }
    void scan(const std::string& name);
};

int read_items(sd_bus_message* m, std::map<std::string, Val>& into) {
    int r = sd_bus_message_enter_container(m, 'a', "{sa{sv}}");
    if (r < 0) return r;
    while ((r = sd_bus_message_enter_container(m, 'e', "sa{sv}")) > 0) {
        const char* path;
        if ((r = sd_bus_message_read(m, "s", &path)) < 0) return r;
        Val v;
        if ((r = sd_bus_message_enter_container(m, 'a', "{sv}")) < 0) return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
            const char* key;
            if ((r = sd_bus_message_read(m, "s", &key)) < 0) return r;
            if (std::strcmp(key, "Value") == 0) r = read_variant(m, v);
            else r = sd_bus_message_skip(m, "v");
            if (r < 0) return r;
            if ((r = sd_bus_message_exit_container(m)) < 0) return r;
        }
        if (r < 0) return r;
        if ((r = sd_bus_message_exit_container(m)) < 0) return r;
        if ((r = sd_bus_message_exit_container(m)) < 0) return r;
        into[path] = std::move(v);
    }
    if (r < 0) return r;
    return sd_bus_message_exit_container(m);
}

struct ScanCtx {
    Consumer* c;
    std::string name;
};

int on_get_items(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* ctx = static_cast<ScanCtx*>(userdata);
    Consumer* c = ctx->c;
    if (sd_bus_message_is_method_error(m, nullptr)) {
        std::fprintf(stderr, "bench-floor: GetItems %s: %s\n", ctx->name.c_str(), sd_bus_message_get_error(m)->message);
    } else {
        auto& vals = c->services[ctx->name];
        if (int r = read_items(m, vals); r < 0) std::fprintf(stderr, "bench-floor: GetItems reply: %s\n", std::strerror(-r));
        if (const char* sender = sd_bus_message_get_sender(m)) c->owners[sender] = ctx->name;
        c->check();
    }
    delete ctx;
    return 0;
}

void Consumer::scan(const std::string& name) {
    if (name.compare(0, prefix.size(), prefix) != 0 || asked[name]) return;
    asked[name] = true;
    auto* ctx = new ScanCtx{this, name};
    int r = sd_bus_call_method_async(bus, nullptr, name.c_str(), "/", iface, "GetItems", on_get_items, ctx, "");
    if (r < 0) {
        delete ctx;
        std::fprintf(stderr, "bench-floor: GetItems %s: %s\n", name.c_str(), std::strerror(-r));
    }
}

int on_list_names(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* c = static_cast<Consumer*>(userdata);
    if (sd_bus_message_enter_container(m, 'a', "s") < 0) return 0;
    const char* name;
    while (sd_bus_message_read(m, "s", &name) > 0) c->scan(name);
    return 0;
}

int on_name_owner_changed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* c = static_cast<Consumer*>(userdata);
    const char *name, *old_owner, *new_owner;
    if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0) return 0;
    if (*new_owner) c->scan(name);
    else if (c->services.erase(name)) c->asked.erase(name);
    return 0;
}

int on_items_changed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* c = static_cast<Consumer*>(userdata);
    auto o = c->owners.find(sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "");
    if (o != c->owners.end()) read_items(m, c->services[o->second]);
    return 0;
}

int on_properties_changed(sd_bus_message* m, void* userdata, sd_bus_error*) {
    auto* c = static_cast<Consumer*>(userdata);
    auto o = c->owners.find(sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "");
    if (o == c->owners.end()) return 0;
    if (sd_bus_message_enter_container(m, 'a', "{sv}") < 0) return 0;
    while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
        const char* key;
        if (sd_bus_message_read(m, "s", &key) < 0) return 0;
        if (std::strcmp(key, "Value") == 0) read_variant(m, c->services[o->second][sd_bus_message_get_path(m)]);
        else sd_bus_message_skip(m, "v");
        sd_bus_message_exit_container(m);
    }
    return 0;
}

int run_consumer() {
    Consumer c;
    try {
        c.prefix = bench::require_env("BENCH_SERVICE_PREFIX");
        c.expect = bench::env_long("BENCH_EXPECT_SERVICES", 0);
        c.paths = bench::env_long("BENCH_PATHS", 0);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench-floor: %s\n", e.what());
        return 2;
    }
    sd_event* event = nullptr;
    int r = env_bus(&c.bus);
    if (r < 0) return die("connecting", r);
    if ((r = sd_event_default(&event)) < 0) return die("sd_event_default", r);
    sigset_t ss;
    sigemptyset(&ss);
    sigaddset(&ss, SIGTERM);
    sigaddset(&ss, SIGINT);
    sigaddset(&ss, SIGUSR1);
    sigprocmask(SIG_BLOCK, &ss, nullptr);
    sd_event_add_signal(event, nullptr, SIGTERM, nullptr, nullptr);
    sd_event_add_signal(event, nullptr, SIGINT, nullptr, nullptr);
    if ((r = sd_bus_attach_event(c.bus, event, 0)) < 0) return die("sd_bus_attach_event", r);
    // Subscribe first, then list (no window for a service to appear unseen).
    sd_bus_add_match_async(c.bus, nullptr,
                           "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                           "member='NameOwnerChanged',arg0namespace='com.victronenergy'",
                           on_name_owner_changed, nullptr, &c);
    sd_bus_add_match_async(c.bus, nullptr, "type='signal',interface='com.victronenergy.BusItem',member='ItemsChanged'",
                           on_items_changed, nullptr, &c);
    sd_bus_add_match_async(c.bus, nullptr,
                           "type='signal',interface='com.victronenergy.BusItem',member='PropertiesChanged'",
                           on_properties_changed, nullptr, &c);
    sd_bus_call_method_async(c.bus, nullptr, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                             "ListNames", on_list_names, &c, "");
    r = sd_event_loop(event);
    sd_bus_flush_close_unref(c.bus);
    sd_event_unref(event);
    return r < 0 ? die("sd_event_loop", r) : 0;
}

// ---- probe -------------------------------------------------------------------

int run_probe(const char* dest, const char* path, const char* method, long n) {
    sd_bus* bus = nullptr;
    int r = env_bus(&bus);
    if (r < 0) return die("connecting", r);
    // "Interface.Member" names another interface than BusItem.
    std::string interface = iface, member = method;
    if (auto dot = member.rfind('.'); dot != std::string::npos) {
        interface = member.substr(0, dot);
        member = member.substr(dot + 1);
    }
    std::vector<double> us;
    us.reserve(std::size_t(n));
    for (long k = 0; k < n; ++k) {
        sd_bus_message* call = nullptr;
        sd_bus_message* reply = nullptr;
        sd_bus_error err = SD_BUS_ERROR_NULL;
        sd_bus_message_new_method_call(bus, &call, dest, path, interface.c_str(), member.c_str());
        auto t0 = std::chrono::steady_clock::now();
        r = sd_bus_call(bus, call, 10'000'000, &err, &reply);
        auto t1 = std::chrono::steady_clock::now();
        sd_bus_message_unref(call);
        sd_bus_message_unref(reply);
        if (r < 0) {
            std::fprintf(stderr, "bench-floor: %s %s %s: %s\n", dest, path, method, err.message ? err.message : "");
            sd_bus_error_free(&err);
            return 1;
        }
        us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
    }
    sd_bus_flush_close_unref(bus);
    std::sort(us.begin(), us.end());
    auto q = [&](double f) { return us.empty() ? 0.0 : us[std::min(us.size() - 1, std::size_t(f * double(us.size())))]; };
    std::printf("{\"n\": %ld, \"p50_us\": %.1f, \"p90_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f}\n", n, q(0.5),
                q(0.9), q(0.99), us.empty() ? 0.0 : us.back());
    return 0;
}

} // namespace

int main(int argc, char** argv) {
    std::signal(SIGUSR1, SIG_IGN);
    std::string role = argc > 1 ? argv[1] : "";
    if (role == "service" && argc == 2) return run_service();
    if (role == "consumer" && argc == 2) return run_consumer();
    if (role == "probe" && argc == 6) return run_probe(argv[2], argv[3], argv[4], std::strtol(argv[5], nullptr, 10));
    std::fprintf(stderr, "usage: bench-floor service | consumer | probe DEST PATH METHOD N\n");
    return 2;
}
