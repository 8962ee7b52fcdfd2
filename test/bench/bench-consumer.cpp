// The benchmark consumer (bench-contract.md, "Consumer contract"), written
// on the SDK exactly as a plugin reads other services: the process's
// moat::Monitor on a bus connection follows the services, scans each with
// GetItems and caches every value; this program only counts what is known.
//
// Environment: BENCH_SERVICE_PREFIX, BENCH_EXPECT_SERVICES, BENCH_PATHS,
// BENCH_CATALOGUE_TSV (the paths every service exports), BENCH_BUS_ADDRESS.
// Prints "READY <services> <values>" once, when every path of every expected
// service is known; then idles until SIGTERM/SIGINT (exit 0).
#include <csignal>
#include <cstdio>
#include <iostream>

#include <moat/monitor.hpp>

#include "catalogue.hpp"
#include <moat/signal_watch.hpp>

namespace {

/// The Monitor follows service classes (com.victronenergy.<type>) or full
/// names; the contract's prefix is a plain string prefix. Follow the class
/// the prefix lies in and filter by the prefix.
std::string class_of_prefix(std::string prefix) {
    while (!prefix.empty() && prefix.back() == '.') prefix.pop_back();
    int dots = 0;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (prefix[i] == '.' && ++dots == 3) return prefix.substr(0, i);
    return prefix;
}

} // namespace

int main() {
    std::signal(SIGUSR1, SIG_IGN);
    std::string prefix, bus;
    long expect = 0, paths_per_service = 0;
    std::vector<std::string> paths;
    try {
        prefix = bench::require_env("BENCH_SERVICE_PREFIX");
        expect = bench::env_long("BENCH_EXPECT_SERVICES", 0);
        auto cat = bench::read_catalogue(bench::require_env("BENCH_CATALOGUE_TSV"));
        for (auto& it : cat.items) paths.push_back(std::move(it.path));
        paths_per_service = bench::env_long("BENCH_PATHS", long(paths.size()));
        bus = bench::bench_bus_spec();
    } catch (const std::exception& e) {
        std::cerr << "bench-consumer: " << e.what() << "\n";
        return 2;
    }

    moat::Loop loop;
    auto sink = moat::stderr_sink();
    sink->level = moat::LogLevel::warning;
    moat::Logger log("bench-consumer", sink);
    try {
        auto conn = moat::Bus::open(loop, bus, log);
        moat::Monitor monitor(*conn, log.child("monitor"));
        const std::string pattern = class_of_prefix(prefix);
        bool ready = false;
        // Values known: the catalogue paths present in each complete service.
        auto check = [&] {
            if (ready) return;
            long services = 0, values = 0;
            for (const auto& s : monitor.services(pattern)) {
                if (s.name.compare(0, prefix.size(), prefix) != 0) continue;
                ++services;
                for (const auto& p : paths) values += monitor.seen(s.name, p) ? 1 : 0;
            }
            if (services >= expect && values >= expect * paths_per_service) {
                ready = true;
                std::printf("READY %ld %ld\n", services, values);
                std::fflush(stdout);
            }
        };
        auto added = monitor.on_service_added(pattern, [&](const moat::ServiceInfo&) { check(); });
        monitor.watch(pattern);
        moat::Event stop;
        moat::SignalWatch term(loop, SIGTERM, [&](int) { stop.set(); });
        moat::SignalWatch intr(loop, SIGINT, [&](int) { stop.set(); });
        auto main_task = [&]() -> moat::Task<void> {
            check();
            co_await stop.wait();
        };
        moat::run_until_complete(loop, main_task());
    } catch (const std::exception& e) {
        std::cerr << "bench-consumer: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
