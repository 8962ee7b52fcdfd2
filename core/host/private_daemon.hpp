// A private dbus-daemon as a child process: for --demo and for the tests.
// It is stopped by PID when this object goes, and dies with us if we crash.
#pragma once

#include <string>
#include <sys/types.h>

namespace moat {

class PrivateDaemon {
public:
    /// Start dbus-daemon with `config_file`; empty = a generated config
    /// (anyone may own any name, 1024 match rules per connection, as on Venus)
    /// in a fresh temporary directory. Throws std::runtime_error on failure.
    explicit PrivateDaemon(std::string config_file = {});
    ~PrivateDaemon();
    PrivateDaemon(const PrivateDaemon&) = delete;
    PrivateDaemon& operator=(const PrivateDaemon&) = delete;

    const std::string& address() const { return address_; }
    pid_t pid() const { return pid_; }
    /// Stop the daemon now (idempotent; async-signal-safe enough for an emergency exit).
    void kill();

private:
    pid_t pid_ = -1;
    std::string address_;
    std::string temp_dir_;
};

} // namespace moat
