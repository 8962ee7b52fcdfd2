// com.victronenergy.settings standalone (moat::SettingsService), for the
// tests, the demo and users without a GX:
//
//   settings-service --file PATH [--name com.victronenergy.settings]
//
// Runs on the bus in DBUS_SESSION_BUS_ADDRESS (else the system bus), prints
// "ready NAME" on stdout once the name is owned, exits 3 when the name is
// owned by somebody else, 1 when the file cannot be read or moved aside, and
// 0 on SIGTERM/SIGINT after writing unsaved changes.
#include <csignal>
#include <cstdlib>
#include <iostream>

#include <moat/settings_service.hpp>
#include <moat/signal_watch.hpp>

namespace {

moat::Task<void> serve(moat::SettingsService& settings, moat::Event& stop) {
    co_await settings.start();
    std::cout << "ready " << settings.service().name() << std::endl;
    co_await stop.wait();
    co_await settings.stop();
}

int usage() {
    std::cerr << "usage: settings-service --file PATH [--name com.victronenergy.settings]\n";
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    std::string file, name = moat::settings_service_name;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--file" && i + 1 < argc) file = argv[++i];
        else if (a == "--name" && i + 1 < argc) name = argv[++i];
        else return usage();
    }
    if (file.empty()) return usage();

    moat::Loop loop;
    moat::Logger log("settings");
    if (const char* level = std::getenv("MOAT_LOG_LEVEL"))
        if (auto l = moat::parse_log_level(level)) moat::stderr_sink()->level = *l;
    const std::string bus = std::getenv("DBUS_SESSION_BUS_ADDRESS") ? "session" : "system";
    try {
        moat::SettingsService settings(loop, bus, file, log, name);
        moat::Event stop;
        moat::SignalWatch term(loop, SIGTERM, [&](int) { stop.set(); });
        moat::SignalWatch intr(loop, SIGINT, [&](int) { stop.set(); });
        moat::run_until_complete(loop, serve(settings, stop));
    } catch (const moat::NameTakenError& e) {
        std::cerr << "settings-service: cannot start: " << e.what() << "\n";
        return 3;
    } catch (const std::exception& e) {
        std::cerr << "settings-service: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
