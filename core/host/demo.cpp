#include "demo.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <unistd.h>

#include <fmt/format.h>

namespace moat {

namespace fs = std::filesystem;

namespace {

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}

} // namespace

std::string demo_bus_file() {
    if (const char* dir = std::getenv("XDG_RUNTIME_DIR"); dir && *dir) return std::string(dir) + "/moat-victron/demo-bus";
    if (geteuid() == 0) return "/run/moat-victron/demo-bus";
    return fmt::format("/tmp/moat-victron-{}/demo-bus", geteuid());
}

std::string resolve_bus_spec(const std::string& spec) {
    if (spec != "demo") return spec;
    std::string file = demo_bus_file();
    std::string address = read_file(file);
    while (!address.empty() && (address.back() == '\n' || address.back() == ' ')) address.pop_back();
    if (address.empty())
        throw std::runtime_error(
            fmt::format("no demo is running (no bus address in {}): start one with 'moat-victron --demo'", file));
    return address;
}

DemoBusRecord::DemoBusRecord(std::string address) : file_(demo_bus_file()), address_(std::move(address)) {
    std::error_code ec;
    fs::create_directories(fs::path(file_).parent_path(), ec);
    fs::permissions(fs::path(file_).parent_path(), fs::perms::owner_all, fs::perm_options::replace, ec);
    std::string tmp = file_ + ".new";
    {
        std::ofstream f(tmp);
        f << address_ << '\n';
        if (!f) throw std::runtime_error("cannot write " + tmp);
    }
    fs::rename(tmp, file_);
}

DemoBusRecord::~DemoBusRecord() {
    std::string now = read_file(file_);
    if (now == address_ + '\n') {
        std::error_code ec;
        fs::remove(file_, ec);
    }
}

} // namespace moat
