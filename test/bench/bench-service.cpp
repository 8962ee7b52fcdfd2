// The benchmark service (bench-contract.md, "Service contract"), written on
// the SDK exactly as a plugin publishes a Venus service: one moat::Service,
// every catalogue item added, the name requested after the last item, ticks
// of K changes in one batch (one ItemsChanged).
//
// Environment: BENCH_SERVICE, BENCH_CATALOGUE_TSV, BENCH_UPDATE_PATHS,
// BENCH_UPDATE_INTERVAL_MS, BENCH_UPDATE_TICKS, BENCH_BUS_ADDRESS.
// Rate mode (interval > 0): a tick every interval from the moment the name is
// owned. Burst mode (interval 0): each SIGUSR1 adds BENCH_UPDATE_TICKS ticks,
// run one per loop turn. SIGTERM/SIGINT: release the name, exit 0.
// Exit codes: 1 error, 2 bad environment or catalogue, 3 name taken.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <map>

#include <moat/service.hpp>

#include "catalogue.hpp"
#include <moat/signal_watch.hpp>

namespace {

struct Dynamic {
    moat::Item* item;
    double base;
};

moat::Value initial_value(const bench::CatalogueItem& it) {
    switch (it.type) {
    case 'i':
    case 'x': return moat::Value(static_cast<std::int64_t>(std::stoll(it.value)));
    case 'd': return moat::Value(std::stod(it.value));
    case 's': return moat::Value(it.value);
    default: return moat::Value();
    }
}

struct Settings {
    std::string name;
    long update_paths = 0;
    long interval_ms = 0;
    long ticks = 0;
};

class Bench {
public:
    Bench(moat::Loop& loop, moat::Service& svc, std::vector<Dynamic> dynamic, Settings s)
        : loop_(loop), svc_(svc), dynamic_(std::move(dynamic)), s_(std::move(s)) {}

    void add_burst() {
        pending_ += s_.ticks;
        kick_.set();
    }
    void request_stop() { stop_.set(); }

    moat::Task<void> run() {
        co_await svc_.start();
        auto body = [this](moat::TaskGroup& g) -> moat::Task<void> {
            if (s_.update_paths > 0) {
                if (s_.interval_ms > 0) g.spawn(rate(), "rate");
                else g.spawn(burst(), "burst");
            }
            co_await stop_.wait();
            g.cancel();
        };
        auto group = moat::with_group(body);
        co_await group;
        co_await svc_.stop();
    }

private:
    void tick() {
        ++t_;
        auto batch = svc_.batch();
        const std::size_t k = std::min<std::size_t>(std::size_t(s_.update_paths), dynamic_.size());
        for (std::size_t j = 0; j < k; ++j) dynamic_[j].item->set(dynamic_[j].base + 0.001 * double(t_));
    }

    moat::Task<void> rate() {
        const auto interval = std::chrono::milliseconds(s_.interval_ms);
        auto next = loop_.clock().now() + interval;
        for (;;) {
            co_await moat::sleep_for(next - loop_.clock().now());
            tick();
            next += interval;
        }
    }

    moat::Task<void> burst() {
        for (;;) {
            co_await kick_.wait();
            kick_.clear();
            while (pending_ > 0) {
                --pending_;
                tick();
                co_await moat::checkpoint();  // one tick per loop turn: the connection flushes between
            }
        }
    }

    moat::Loop& loop_;
    moat::Service& svc_;
    std::vector<Dynamic> dynamic_;
    Settings s_;
    std::uint64_t t_ = 0;
    long pending_ = 0;
    moat::Event kick_, stop_;
};

} // namespace

int main() {
    // SIGUSR1 must never kill us, not even before the loop watches it.
    std::signal(SIGUSR1, SIG_IGN);

    Settings s;
    bench::Catalogue cat;
    std::string bus;
    try {
        s.name = bench::require_env("BENCH_SERVICE");
        s.update_paths = bench::env_long("BENCH_UPDATE_PATHS", 0);
        s.interval_ms = bench::env_long("BENCH_UPDATE_INTERVAL_MS", 0);
        s.ticks = bench::env_long("BENCH_UPDATE_TICKS", 0);
        cat = bench::read_catalogue(bench::require_env("BENCH_CATALOGUE_TSV"));
        bus = bench::bench_bus_spec();
    } catch (const std::exception& e) {
        std::cerr << "bench-service: " << e.what() << "\n";
        return 2;
    }

    moat::Loop loop;
    auto sink = moat::stderr_sink();
    sink->level = moat::LogLevel::warning;  // log quietly: logging costs counted CPU
    moat::Logger log("bench-service", sink);
    try {
        moat::Service svc(loop, s.name, bus, log);
        for (const auto& it : cat.items) {
            moat::ItemOptions o;
            if (!it.format.empty()) o.text(it.format);
            svc.add(it.path, initial_value(it), std::move(o));
        }
        std::vector<Dynamic> dynamic;
        for (const auto& p : cat.dynamic) {
            moat::Item& item = svc.at(p);
            auto base = item.value().as_number();
            if (!base) throw std::runtime_error("dynamic path " + p + " is not a number");
            dynamic.push_back({&item, *base});
        }
        Bench bench(loop, svc, std::move(dynamic), s);
        moat::SignalWatch usr1(loop, SIGUSR1, [&](int) {
            if (s.interval_ms == 0 && s.ticks > 0) bench.add_burst();
        });
        moat::SignalWatch term(loop, SIGTERM, [&](int) { bench.request_stop(); });
        moat::SignalWatch intr(loop, SIGINT, [&](int) { bench.request_stop(); });
        moat::run_until_complete(loop, bench.run());
    } catch (const moat::NameTakenError& e) {
        std::cerr << "bench-service: " << e.what() << "\n";
        return 3;
    } catch (const std::exception& e) {
        std::cerr << "bench-service: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
