#include <catch2/catch.hpp>

#include "plugin_loader.hpp"

#include <algorithm>
#include <filesystem>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace moat;
namespace fs = std::filesystem;

namespace {

std::string load_error(const std::string& dir, std::string_view kind) {
    try {
        load_plugin(dir, kind);
    } catch (const PluginError& e) {
        return e.what();
    }
    return "loaded";
}

/// A private copy of a test plugin, to play with its permissions.
struct PluginCopy {
    fs::path dir;
    explicit PluginCopy(std::string_view kind) {
        dir = fs::temp_directory_path() / ("moat-plugins-" + std::to_string(::getpid()));
        fs::create_directories(dir);
        ::chmod(dir.c_str(), 0755);
        fs::copy_file(fs::path(MOAT_TEST_PLUGIN_DIR) / (std::string(kind) + ".so"), dir / (std::string(kind) + ".so"),
                      fs::copy_options::overwrite_existing);
    }
    ~PluginCopy() { fs::remove_all(dir); }
};

} // namespace

TEST_CASE("a good plugin loads and describes itself", "[loader]") {
    auto lib = load_plugin(MOAT_TEST_PLUGIN_DIR, "worker");
    CHECK(std::string(lib->descriptor().kind) == "worker");
    CHECK(lib->descriptor().restartable);
    CHECK(lib->keys().size() == 8);
    CHECK_FALSE(load_plugin(MOAT_TEST_PLUGIN_DIR, "fail_at_start")->descriptor().restartable);
}

TEST_CASE("the loader refuses bad plugins and names file and reason", "[loader]") {
    const std::string dir = MOAT_TEST_PLUGIN_DIR;
    CHECK_THAT(load_error(dir, "nothing_here"), Catch::Contains(dir + "/nothing_here.so: no such file"));
    CHECK_THAT(load_error(dir, "not_a_plugin"), Catch::Contains("not a moat-victron plugin (no moat_plugin_entry symbol)"));
    CHECK_THAT(load_error(dir, "wrong_abi"), Catch::Contains(fmt::format("built for plugin ABI {}.0, this host has {}.{}",
                                                                           abi_major + 1, abi_major, abi_minor)));
    CHECK_THAT(load_error(dir, "wrong_kind"), Catch::Contains("declares kind 'something_else' but is installed as 'wrong_kind'"));
    CHECK_THAT(load_error(dir, "../plugins/worker"), Catch::Contains("a kind is a plain name without '/' or '..'"));
    CHECK_THAT(load_error(dir, "a..b"), Catch::Contains("without '/' or '..'"));
}

TEST_CASE("the loader refuses plugin files others could have changed", "[loader]") {
    PluginCopy copy("worker");
    auto file = copy.dir / "worker.so";
    CHECK(load_error(copy.dir.string(), "worker") == "loaded");
    ::chmod(file.c_str(), 0775);
    CHECK_THAT(load_error(copy.dir.string(), "worker"), Catch::Contains("is writable by its group (mode 775); run chmod go-w"));
    ::chmod(file.c_str(), 0757);
    CHECK_THAT(load_error(copy.dir.string(), "worker"), Catch::Contains("is writable by everyone"));
    ::chmod(file.c_str(), 0755);
    ::chmod(copy.dir.c_str(), 0777);
    CHECK_THAT(load_error(copy.dir.string(), "worker"), Catch::Contains("its directory " + copy.dir.string() + " is writable"));
    ::chmod(copy.dir.c_str(), 0755);
    if (::geteuid() == 0) {
        REQUIRE(::chown(file.c_str(), 65534, 65534) == 0);
        CHECK_THAT(load_error(copy.dir.string(), "worker"), Catch::Contains("is owned by uid 65534"));
    } else {
        WARN("not root: the foreign-owner case is checked by the integration test when run as root");
    }
}

TEST_CASE("the loader refuses a plugin built against another SDK ABI, naming both", "[loader]") {
    // abi_drift was compiled against headers whose Context has one member more.
    auto error = load_error(MOAT_TEST_PLUGIN_DIR, "abi_drift");
    CHECK_THAT(error, Catch::Contains(fmt::format("built against moat SDK {} (abi ", sdk_version)));
    CHECK_THAT(error, Catch::Contains(fmt::format("this host is {} (abi {}): rebuild the plugin", sdk_version,
                                                  abi_fingerprint)));
    // The plugin's fingerprint is its own, not the host's.
    CHECK(error.find(fmt::format("(abi {}), this host", abi_fingerprint)) == std::string::npos);
}

TEST_CASE("the plugin path is searched in order, the first file found wins", "[loader]") {
    PluginCopy copy("worker");
    const std::string first = copy.dir.string(), second = MOAT_TEST_PLUGIN_DIR;
    CHECK(load_plugin(PluginPath{first, second}, "worker")->path() == first + "/worker.so");
    CHECK(load_plugin(PluginPath{first, second}, "stall")->path() == second + "/stall.so");
    CHECK(load_plugin(PluginPath{"/nonexistent", second}, "worker")->path() == second + "/worker.so");
    try {
        load_plugin(PluginPath{first, "/nonexistent"}, "nothing_here");
        FAIL("loaded");
    } catch (const PluginError& e) {
        CHECK_THAT(e.what(), Catch::Contains("no nothing_here.so in the plugin path " + first + ", /nonexistent"));
    }
    auto kinds = plugin_kinds(PluginPath{first, second});
    CHECK(std::count(kinds.begin(), kinds.end(), "worker") == 1);
}

TEST_CASE("a plugin directory that cannot be read is an error naming it, not an empty directory", "[loader]") {
    CHECK(plugin_kinds("/nonexistent/plugins").empty());
    CHECK_THROWS_WITH(plugin_kinds(PluginPath{MOAT_TEST_PLUGIN_DIR, MOAT_TEST_DIR "/unit/catch_main.cpp"}),
                      "the plugin directory " MOAT_TEST_DIR "/unit/catch_main.cpp cannot be opened: Not a directory");
    // A real readdir() failure: the /proc/PID/net directory of a process that
    // has exited (a zombie, not yet reaped) opens, but reading it fails.
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) ::_exit(0);
    siginfo_t info{};
    REQUIRE(::waitid(P_PID, child, &info, WEXITED | WNOWAIT) == 0);  // exited, still there
    const std::string net = fmt::format("/proc/{}/net", child);
    std::string error;
    try {
        plugin_kinds(PluginPath{MOAT_TEST_PLUGIN_DIR, net});
    } catch (const PluginError& e) {
        error = e.what();
    }
    ::waitpid(child, nullptr, 0);
    CHECK(error == "the plugin directory " + net + " cannot be read: Invalid argument");
}

TEST_CASE("a plugin's client commands come with its descriptor", "[loader]") {
    auto statusline = load_plugin(std::string(MOAT_BUILD_DIR) + "/plugins", "statusline");
    REQUIRE(statusline->commands().size() == 1);
    CHECK(statusline->commands()[0]->name == "status");
    auto inverter = load_plugin(std::string(MOAT_BUILD_DIR) + "/plugins", "inverter");
    REQUIRE(inverter->commands().size() == 1);
    CHECK(inverter->commands()[0]->name == "inverter");
    CHECK(load_plugin(MOAT_TEST_PLUGIN_DIR, "worker")->commands().empty());
}
