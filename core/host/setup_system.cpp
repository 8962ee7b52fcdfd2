// The system side of `moat-victron setup`: layout, files, external commands.
#include "setup_system.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

namespace moat::setup {

Layout::Layout(const fs::path& r)
    : root(fs::absolute(r).lexically_normal()),
      home(root / "data" / service_name),
      versions(home / "versions"),
      current(home / "current"),
      previous(home / "previous"),
      config(home / "moat-victron.toml"),
      service(home / "service" / service_name),
      service_link(root / "service" / service_name),
      log_dir(root / "var" / "log" / service_name),
      rc_local(root / "data" / "rc.local"),
      rc_disabled(root / "data" / "rc.local.disabled"),
      udev_rule(root / "etc" / "udev" / "rules.d" / "99-moat-victron.rules"),
      state(home / "setup.state") {}

Ran run(const std::vector<std::string>& argv) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error(fmt::format("pipe: {}", std::strerror(errno)));
    pid_t pid = ::fork();
    if (pid < 0) {
        ::close(fds[0]);
        ::close(fds[1]);
        throw std::runtime_error(fmt::format("fork: {}", std::strerror(errno)));
    }
    if (pid == 0) {
        ::dup2(fds[1], 1);
        ::dup2(fds[1], 2);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        ::execvp(args[0], args.data());
        std::string msg = fmt::format("cannot run {}: {}\n", argv[0], std::strerror(errno));
        (void)!::write(2, msg.data(), msg.size());
        ::_exit(127);
    }
    ::close(fds[1]);
    Ran r;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fds[0], buf, sizeof buf);
        if (n > 0) r.output.append(buf, std::size_t(n));
        else if (n < 0 && errno == EINTR) continue;
        else break;
    }
    ::close(fds[0]);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

std::string tool(const std::string& name) {
    std::string var = "MOAT_SETUP_";
    for (char c : name) var += char(std::toupper(static_cast<unsigned char>(c)));
    const char* v = std::getenv(var.c_str());
    return v && *v ? v : name;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    if (!in) throw std::runtime_error(fmt::format("cannot read {}", p.string()));
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

void write_text(const fs::path& p, const std::string& text, fs::perms mode) {
    fs::create_directories(p.parent_path());
    fs::path tmp = p;
    tmp += fmt::format(".tmp-{}", ::getpid());
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << text;
        out.flush();
        if (!out) throw std::runtime_error(fmt::format("cannot write {}", tmp.string()));
    }
    fs::permissions(tmp, mode);
    fs::rename(tmp, p);
}

void replace_symlink(const fs::path& target, const fs::path& link) {
    fs::path tmp = link;
    tmp += fmt::format(".tmp-{}", ::getpid());
    fs::remove(tmp);
    fs::create_symlink(target, tmp);
    fs::rename(tmp, link);  // rename(2) replaces the old link in one step
}

bool read_only(const fs::path& p) {
    if (const char* v = std::getenv("MOAT_SETUP_ROOTFS_RO"); v && std::string_view(v) == "1") return true;
    struct statvfs st {};
    fs::path probe = p;
    while (!fs::exists(probe) && probe.has_parent_path() && probe != probe.parent_path()) probe = probe.parent_path();
    if (::statvfs(probe.c_str(), &st) != 0) return false;
    return (st.f_flag & ST_RDONLY) != 0;
}

} // namespace moat::setup
