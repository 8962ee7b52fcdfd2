// The settings file: reading (a corrupt file is kept aside), formatting and
#include "value_dbus.hpp"
// the atomic write (see settings_service.hpp for the format).
#include "moat/settings_service.hpp"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include "config_toml.hpp"

namespace moat {

namespace {

/// A reason the file is not valid settings.
struct Corrupt : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string where(const toml::node& node) {
    const auto& b = node.source().begin;
    return b.line ? fmt::format("line {}: ", b.line) : std::string();
}

bool valid_setting_path(const std::string& p) {
    if (!p.starts_with("/Settings/") || p.back() == '/' || p.find("/_") != std::string::npos) return false;
    char prev = 0;
    for (char c : p) {
        if (c == '/' ? prev == '/' : !(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
        prev = c;
    }
    return true;
}

Value scalar(const toml::node& node, SettingType type, const std::string& what) {
    switch (type) {
    case SettingType::integer:
        if (auto v = node.value_exact<std::int64_t>()) return Value(*v);
        break;
    case SettingType::floating:
        if (auto v = node.value_exact<double>()) return Value(*v);
        if (auto v = node.value_exact<std::int64_t>()) return Value(static_cast<double>(*v));  // a hand-edited "10"
        break;
    case SettingType::string:
        if (auto v = node.value_exact<std::string>()) return Value(*v);
        break;
    }
    throw Corrupt(fmt::format("{}{} is not of the setting's type \"{}\"", where(node), what, type_letter(type)));
}

SettingsMap parse_settings(const std::string& text, const std::string& file) {
    toml::table doc;
    try {
        doc = parse_toml_text(text, file);
    } catch (const toml::parse_error& e) {
        throw Corrupt(fmt::format("line {}, column {}: {}", e.source().begin.line, e.source().begin.column,
                                  e.description()));
    }
    for (const auto& [key, node] : doc)
        if (key.str() != "format" && key.str() != "settings")
            throw Corrupt(fmt::format("{}unknown key \"{}\"", where(node), key.str()));
    auto format = doc["format"].value_exact<std::int64_t>();
    if (!format) throw Corrupt("\"format = 1\" is missing");
    if (*format != 1) throw Corrupt(fmt::format("format {} is not supported (only 1)", *format));
    SettingsMap out;
    const toml::node* settings = doc.get("settings");
    if (!settings) return out;
    if (!settings->is_table()) throw Corrupt(where(*settings) + "\"settings\" is not a table");
    for (const auto& [key, node] : *settings->as_table()) {
        const std::string path(key.str());
        if (!valid_setting_path(path)) throw Corrupt(fmt::format("{}\"{}\" is not a setting path", where(node), path));
        const toml::table* t = node.as_table();
        if (!t) throw Corrupt(fmt::format("{}{} is not a table", where(node), path));
        for (const auto& [k, n] : *t)
            if (!std::set<std::string_view>{"type", "value", "default", "min", "max", "silent"}.count(k.str()))
                throw Corrupt(fmt::format("{}{}: unknown key \"{}\"", where(n), path, k.str()));
        auto letter = (*t)["type"].value_exact<std::string>();
        auto type = letter ? setting_type(*letter) : std::nullopt;
        if (!type) {
            const toml::node* t_node = t->get("type");
            throw Corrupt(fmt::format("{}{}: type must be \"i\", \"f\" or \"s\"", where(t_node ? *t_node : node), path));
        }
        Setting s;
        s.type = *type;
        for (auto [name, target] : {std::pair{"value", &s.value}, {"default", &s.default_value}}) {
            const toml::node* n = t->get(name);
            if (!n) throw Corrupt(fmt::format("{}{}: {} is missing", where(node), path, name));
            *target = scalar(*n, s.type, path + " " + name);
        }
        const toml::node* lo = t->get("min");
        const toml::node* hi = t->get("max");
        if (bool(lo) != bool(hi) || (lo && s.type == SettingType::string))
            throw Corrupt(fmt::format("{}{}: min and max go together, and only with numbers", where(node), path));
        if (lo) {
            s.min = scalar(*lo, s.type, path + " min");
            s.max = scalar(*hi, s.type, path + " max");
        }
        if (const toml::node* silent = t->get("silent")) {
            auto b = silent->value_exact<bool>();
            if (!b) throw Corrupt(fmt::format("{}{}: silent is not a boolean", where(*silent), path));
            s.silent = *b;
        }
        out.emplace(path, std::move(s));
    }
    // No setting may lie below another one (/A and /A/B).
    for (auto it = out.begin(); it != out.end(); ++it)
        if (auto next = std::next(it); next != out.end() && next->first.starts_with(it->first + "/"))
            throw Corrupt(fmt::format("{} lies below the setting {}", next->first, it->first));
    return out;
}

std::string utc_stamp(std::chrono::system_clock::time_point now) {
    std::time_t t = std::chrono::system_clock::to_time_t(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
    return buf;
}

std::string toml_string(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"') out += "\\\"";
        else if (c == '\\') out += "\\\\";
        else if (c < 0x20 || c == 0x7f) out += fmt::format("\\u{:04X}", c);
        else out += static_cast<char>(c);
    }
    return out + "\"";
}

std::string toml_value(const Value& v) {
    if (v.is_int()) return std::to_string(v.as_int());
    if (v.is_double()) {
        // Python's repr is valid TOML and round-trips: 12.5, 1e-05, inf, nan.
        std::string r = python_float_repr(v.as_double());
        if (r == "nan" || r == "-nan") return "nan";
        return r;
    }
    if (v.is_string()) return toml_string(v.as_string());
    throw std::logic_error("a setting holds a " + std::string(kind_name(v)));
}

[[noreturn]] void fail_io(const std::string& what, const std::string& file) {
    throw std::runtime_error(fmt::format("{} {}: {}", what, file, std::strerror(errno)));
}

} // namespace

LoadedSettings load_settings_file(const std::string& file, std::chrono::system_clock::time_point now) {
    LoadedSettings out;
    struct stat st {};
    if (stat(file.c_str(), &st) != 0) {
        if (errno == ENOENT) return out;
        fail_io("cannot read the settings file", file);
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) fail_io("cannot read the settings file", file);
    std::stringstream text;
    text << in.rdbuf();
    if (in.bad()) fail_io("cannot read the settings file", file);
    try {
        out.settings = parse_settings(text.str(), file);
        return out;
    } catch (const Corrupt& e) {
        out.problem = e.what();
    }
    // Kept for a human to look at; never replaced in place.
    std::string aside = file + ".corrupt-" + utc_stamp(now);
    for (int n = 1; access(aside.c_str(), F_OK) == 0; ++n) aside = file + ".corrupt-" + utc_stamp(now) + "-" + std::to_string(n);
    if (std::rename(file.c_str(), aside.c_str()) != 0)
        fail_io(fmt::format("the settings file is corrupt ({}) and cannot be moved aside to {}:", out.problem, aside), file);
    out.kept_aside = aside;
    return out;
}

std::string format_settings_file(const SettingsMap& settings) {
    std::string out =
        "# Settings of com.victronenergy.settings, written by moat-victron.\n"
        "# Edit only while the service is stopped; a file it cannot read is moved aside.\n"
        "format = 1\n";
    for (const auto& [path, s] : settings) {
        out += fmt::format("\n[settings.{}]\ntype = \"{}\"\nvalue = {}\ndefault = {}\n", toml_string(path),
                           type_letter(s.type), toml_value(s.value), toml_value(s.default_value));
        if (s.min && s.max) out += fmt::format("min = {}\nmax = {}\n", toml_value(*s.min), toml_value(*s.max));
        if (s.silent) out += "silent = true\n";
    }
    return out;
}

void save_settings_file(const std::string& file, const SettingsMap& settings) {
    const std::string text = format_settings_file(settings);
    const std::string tmp = file + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) fail_io("cannot create", tmp);
    std::size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            int e = errno;
            ::close(fd);
            errno = e;
            fail_io("cannot write", tmp);
        }
        done += std::size_t(n);
    }
    if (::fsync(fd) != 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        fail_io("cannot sync", tmp);
    }
    if (::close(fd) != 0) fail_io("cannot close", tmp);
    if (std::rename(tmp.c_str(), file.c_str()) != 0) fail_io("cannot rename " + tmp + " to", file);
    // The rename itself must reach the disk too.
    auto slash = file.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : file.substr(0, slash);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

} // namespace moat
