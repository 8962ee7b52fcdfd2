// The atomically replaced file of the latest line.
#include "line_file.hpp"

#include <catch2/catch.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

using moat::statusline::LineFile;
namespace fs = std::filesystem;

namespace {

struct TempDir {
    fs::path path;
    TempDir()
    {
        std::string tmpl = (fs::temp_directory_path() / "statusline-test-XXXXXX").string();
        if (!mkdtemp(tmpl.data()))
            throw std::runtime_error("mkdtemp failed");
        path = tmpl;
    }
    ~TempDir() { fs::remove_all(path); }
};

std::string slurp(const fs::path& p)
{
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

TEST_CASE("LineFile holds exactly the latest line and leaves no temporary file")
{
    TempDir dir;
    LineFile f((dir.path / "status").string());
    f.write("first");
    CHECK(slurp(dir.path / "status") == "first\n");
    const std::string utf8 = "27.61+.39V  Sol    66W   2.4A <  5  Bat   2.0A > -2.0\xE2\x89\xAA  0.0";
    f.write(utf8);
    CHECK(slurp(dir.path / "status") == utf8 + "\n");
    f.write("short");
    CHECK(slurp(dir.path / "status") == "short\n");
    CHECK_FALSE(fs::exists(dir.path / "status.tmp"));
    CHECK((fs::status(dir.path / "status").permissions() & fs::perms::others_write) == fs::perms::none);
}

TEST_CASE("LineFile replaces the file by rename, so an open reader keeps the old content")
{
    TempDir dir;
    LineFile f((dir.path / "status").string());
    f.write("old");
    std::ifstream reader(dir.path / "status");
    f.write("new");
    std::string seen;
    std::getline(reader, seen);
    CHECK(seen == "old");
    CHECK(slurp(dir.path / "status") == "new\n");
}

TEST_CASE("LineFile remove deletes the file and tolerates a missing one")
{
    TempDir dir;
    LineFile f((dir.path / "status").string());
    f.write("x");
    f.remove();
    CHECK_FALSE(fs::exists(dir.path / "status"));
    CHECK_NOTHROW(f.remove());
}

TEST_CASE("LineFile errors name the file")
{
    LineFile f("/nonexistent-statusline-dir/status");
    try {
        f.write("x");
        FAIL("no error");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("/nonexistent-statusline-dir/status.tmp") != std::string::npos);
    }
}
