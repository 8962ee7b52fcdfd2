// A private dbus-daemon for one test: started with test/fixtures/dbus-test.conf,
// stopped by PID when the object goes (and killed with us if we crash).
#pragma once

#include <string>
#include <sys/types.h>

namespace moat::test {

class PrivateBus {
public:
    PrivateBus();
    ~PrivateBus();
    PrivateBus(const PrivateBus&) = delete;
    PrivateBus& operator=(const PrivateBus&) = delete;

    const std::string& address() const { return address_; }
    pid_t pid() const { return pid_; }
    /// Kill the daemon now (to test a lost connection).
    void kill();

private:
    pid_t pid_ = -1;
    std::string address_;
};

} // namespace moat::test
