// Test helper: runs test/fixtures/venus_publisher.py (an independent,
// Venus-like publisher in Python) as a child process and controls it.
#pragma once

#include <csignal>
#include <poll.h>
#include <stdexcept>
#include <string>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus_call.hpp"
#include "value_dbus.hpp"
#include "moat/bus.hpp"
#include "moat/value.hpp"

namespace moat::test {

class Publisher {
public:
    /// Start the publisher with `config` (JSON, see the script) and wait
    /// until it owns its names. Throws std::runtime_error when it does not start.
    Publisher(const std::string& address, const std::string& config) {
        const char* python = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
        const std::string script = MOAT_TEST_DIR "/fixtures/venus_publisher.py";
        int fds[2];
        if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
        pid_ = fork();
        if (pid_ < 0) throw std::runtime_error("fork failed");
        if (pid_ == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            dup2(fds[1], 1);
            close(fds[0]);
            close(fds[1]);
            execlp(python, python, script.c_str(), address.c_str(), config.c_str(), nullptr);
            _exit(127);
        }
        close(fds[1]);
        std::string out;
        char buf[256];
        for (;;) {
            pollfd p{fds[0], POLLIN, 0};
            if (poll(&p, 1, 20000) <= 0) break;
            ssize_t n = read(fds[0], buf, sizeof buf);
            if (n <= 0) break;
            out.append(buf, std::size_t(n));
            if (out.find("READY\n") != std::string::npos) break;
        }
        close(fds[0]);
        if (out.find("READY\n") == std::string::npos) {
            kill();
            throw std::runtime_error("the Python publisher did not start (needs python3-dbus and python3-gi)");
        }
    }
    ~Publisher() { kill(); }
    Publisher(const Publisher&) = delete;
    Publisher& operator=(const Publisher&) = delete;

    /// Kill it (SIGKILL by default: its connections just close) and reap it.
    void kill(int sig = SIGKILL) {
        if (pid_ <= 0) return;
        ::kill(pid_, sig);
        int status = 0;
        waitpid(pid_, &status, 0);
        pid_ = -1;
    }

private:
    pid_t pid_ = -1;
};

/// Make the publisher of `service` store `value` at `path` and announce it:
/// how = "prop" (PropertiesChanged), "items" (ItemsChanged) or "silent".
/// The signal comes before the reply, so the monitor has it when this returns.
inline Task<void> publish(Bus& bus, std::string service, std::string path, Value value, std::string how = "prop") {
    BusCall call = new_call(bus, service, "/moat_test", "org.moat.test.Control", "Set");
    call.msg << path << to_variant(value) << how;
    co_await BusCallAwaitable(std::move(call), std::chrono::seconds(5));
}

/// Several values in one ItemsChanged.
inline Task<void> publish_many(Bus& bus, std::string service, Value::Dict values) {
    BusCall call = new_call(bus, service, "/moat_test", "org.moat.test.Control", "SetMany");
    std::map<std::string, sdbus::Variant> body;
    for (auto& [path, v] : values) body.emplace(path, to_variant(v));
    call.msg << body;
    co_await BusCallAwaitable(std::move(call), std::chrono::seconds(5));
}

} // namespace moat::test
