#include "private_daemon.hpp"

#include <csignal>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace moat {

namespace {

std::string generated_config(const std::string& dir) {
    return "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\"\n"
           " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
           "<busconfig>\n"
           "  <type>session</type>\n"
           "  <listen>unix:dir=" + dir + "</listen>\n"
           "  <auth>EXTERNAL</auth>\n"
           "  <policy context=\"default\">\n"
           "    <allow send_destination=\"*\" eavesdrop=\"true\"/>\n"
           "    <allow eavesdrop=\"true\"/>\n"
           "    <allow own=\"*\"/>\n"
           "  </policy>\n"
           "  <limit name=\"max_match_rules_per_connection\">1024</limit>\n"
           "</busconfig>\n";
}

} // namespace

PrivateDaemon::PrivateDaemon(std::string config_file) {
    if (config_file.empty()) {
        char tmpl[] = "/tmp/moat-victron-bus.XXXXXX";
        if (!mkdtemp(tmpl)) throw std::runtime_error("cannot create a temporary directory for the private bus");
        temp_dir_ = tmpl;
        config_file = temp_dir_ + "/bus.conf";
        std::ofstream(config_file) << generated_config(temp_dir_);
    }
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive a crashed parent
        setpgid(0, 0);                     // a terminal's Ctrl-C is for the parent, which stops us in order
        close(fds[0]);
        // Its messages go to a file beside its socket: as root it warns at
        // every start that it cannot raise its fd limit, which is noise here.
        if (!temp_dir_.empty()) {
            int log = ::open((temp_dir_ + "/bus.log").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (log >= 0) dup2(log, STDERR_FILENO);
        }
        std::string conf = "--config-file=" + config_file;
        std::string fd = "--print-address=" + std::to_string(fds[1]);
        execlp("dbus-daemon", "dbus-daemon", conf.c_str(), "--nofork", "--nopidfile", fd.c_str(), nullptr);
        _exit(127);
    }
    close(fds[1]);
    std::string out;
    char buf[512];
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
        std::string why;
        if (!temp_dir_.empty()) {
            std::ifstream log(temp_dir_ + "/bus.log");
            std::getline(log, why);
        }
        throw std::runtime_error("dbus-daemon did not start (is the package dbus-daemon installed?)" +
                                 (why.empty() ? std::string() : ": " + why));
    }
    address_ = out.substr(0, nl);
}

PrivateDaemon::~PrivateDaemon() {
    kill();
    if (!temp_dir_.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(temp_dir_, ec);
    }
}

void PrivateDaemon::kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
}

} // namespace moat
