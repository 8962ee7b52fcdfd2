#include "support/private_bus.hpp"

#include <csignal>
#include <stdexcept>
#include <string>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace moat::test {

PrivateBus::PrivateBus() {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive a crashed test
        close(fds[0]);
        std::string conf = std::string("--config-file=") + MOAT_TEST_DIR + "/fixtures/dbus-test.conf";
        std::string fd = "--print-address=" + std::to_string(fds[1]);
        execlp("dbus-daemon", "dbus-daemon", conf.c_str(), "--nofork", "--nopidfile", fd.c_str(), nullptr);
        _exit(127);
    }
    close(fds[1]);
    char buf[512];
    std::string out;
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof buf);
        if (n <= 0) break;
        out.append(buf, std::size_t(n));
        if (out.find('\n') != std::string::npos) break;
    }
    close(fds[0]);
    auto nl = out.find('\n');
    if (nl == std::string::npos) {
        kill();
        throw std::runtime_error("dbus-daemon did not print its address (is dbus-daemon installed?)");
    }
    address_ = out.substr(0, nl);
}

PrivateBus::~PrivateBus() { kill(); }

void PrivateBus::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
}

} // namespace moat::test
