#include "plugin_loader.hpp"
#include "config_toml.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <dlfcn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

namespace moat {

PluginLibrary::~PluginLibrary() {
    if (handle_) dlclose(handle_);
}

namespace {

void check_owner_and_mode(const std::string& path, const struct stat& st, std::string_view what) {
    uid_t me = geteuid();
    if (st.st_uid != me && st.st_uid != 0)
        throw PluginError(fmt::format("plugin {}: refused: {} is owned by uid {}, not by us (uid {}) or root", path,
                                      what, st.st_uid, me));
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        throw PluginError(fmt::format("plugin {}: refused: {} is writable by {} (mode {:o}); run chmod go-w", path,
                                      what, (st.st_mode & S_IWOTH) ? "everyone" : "its group", st.st_mode & 07777));
}

} // namespace

std::string find_plugin(const PluginPath& path, std::string_view kind) {
    for (auto& dir : path) {
        std::string file = fmt::format("{}/{}.so", dir, kind);
        struct stat st {};
        if (stat(file.c_str(), &st) == 0) return file;
    }
    return {};
}

std::string describe(const PluginPath& path) {
    std::string out;
    for (auto& d : path) out += (out.empty() ? "" : ", ") + d;
    return out.empty() ? "(no directory)" : out;
}

std::shared_ptr<PluginLibrary> load_plugin(const PluginPath& search, std::string_view kind) {
    if (kind.empty() || kind.find('/') != std::string_view::npos || kind.find("..") != std::string_view::npos)
        throw PluginError(fmt::format("plugin kind '{}' refused: a kind is a plain name without '/' or '..'", kind));
    std::string path = find_plugin(search, kind);
    if (path.empty()) {
        if (search.size() == 1) {
            struct stat st {};
            if (stat(search[0].c_str(), &st) != 0)
                throw PluginError(fmt::format("plugin {}/{}.so: the plugin directory {} does not exist", search[0],
                                              kind, search[0]));
            throw PluginError(fmt::format(
                "plugin {}/{}.so: no such file (is the kind '{}' spelled right? see --list-plugins)", search[0], kind,
                kind));
        }
        throw PluginError(fmt::format("plugin '{}': no {}.so in the plugin path {} (is the kind spelled right? see "
                                      "--list-plugins)",
                                      kind, kind, describe(search)));
    }
    std::string dir = path.substr(0, path.rfind('/'));

    struct stat st {};
    if (stat(dir.c_str(), &st) != 0)
        throw PluginError(fmt::format("plugin {}: the plugin directory {} does not exist", path, dir));
    check_owner_and_mode(path, st, "its directory " + dir);
    if (stat(path.c_str(), &st) != 0) throw PluginError(fmt::format("plugin {}: no such file", path));
    if (!S_ISREG(st.st_mode)) throw PluginError(fmt::format("plugin {}: not a regular file", path));
    check_owner_and_mode(path, st, "the file");

    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) throw PluginError(fmt::format("plugin {}: cannot be loaded: {}", path, dlerror()));
    auto fail = [&](std::string reason) {
        dlclose(handle);
        return PluginError(fmt::format("plugin {}: {}", path, reason));
    };
    using Entry = const PluginDescriptor* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, plugin_entry_symbol));
    if (!entry) throw fail(fmt::format("not a moat-victron plugin (no {} symbol)", plugin_entry_symbol));
    const PluginDescriptor* d = entry();
    if (!d) throw fail("the entry symbol returned no descriptor");
    // The fixed prefix first: nothing past it is read from a plugin of another ABI.
    if (d->abi_major != abi_major || d->abi_minor > abi_minor)
        throw fail(fmt::format("built for plugin ABI {}.{}, this host has {}.{} (moat SDK {}): rebuild the plugin "
                               "against this host's SDK",
                               d->abi_major, d->abi_minor, abi_major, abi_minor, sdk_version));
    if (!d->sdk_version || !d->abi_fingerprint || std::string_view(d->abi_fingerprint) != abi_fingerprint)
        throw fail(fmt::format("built against moat SDK {} (abi {}), this host is {} (abi {}): rebuild the plugin",
                               d->sdk_version ? d->sdk_version : "?", d->abi_fingerprint ? d->abi_fingerprint : "?",
                               sdk_version, abi_fingerprint));
    if (d->size != sizeof(PluginDescriptor))
        throw fail(fmt::format("descriptor has {} bytes, expected {}", d->size, sizeof(PluginDescriptor)));
    if (!d->kind || kind != d->kind)
        throw fail(fmt::format("declares kind '{}' but is installed as '{}'", d->kind ? d->kind : "", kind));
    if (!d->create) throw fail("descriptor has no factory");
    // Defaults are TOML text: a broken one is the plugin's bug, caught at load.
    for (std::size_t i = 0; i < d->key_count; ++i) {
        try {
            parse_default(d->keys[i]);
        } catch (const std::logic_error& e) {
            throw fail(e.what());
        }
    }
    return std::shared_ptr<PluginLibrary>(new PluginLibrary(path, handle, d));
}

std::vector<std::string> plugin_kinds(const std::string& dir) {
    std::vector<std::string> kinds;
    DIR* d = opendir(dir.c_str());
    if (!d) {
        // A directory of the path that does not exist holds no plugins; any
        // other failure (permissions, ...) would hide the plugins it holds.
        if (errno == ENOENT) return kinds;
        throw PluginError(fmt::format("the plugin directory {} cannot be opened: {}", dir, std::strerror(errno)));
    }
    // readdir() returns null at the end and on an error; only errno tells
    // them apart (a 32-bit build without 64-bit file offsets gets EOVERFLOW).
    errno = 0;
    while (dirent* e = readdir(d)) {
        std::string_view name = e->d_name;
        if (name.size() > 3 && name.ends_with(".so")) kinds.emplace_back(name.substr(0, name.size() - 3));
        errno = 0;
    }
    const int error = errno;
    closedir(d);
    if (error != 0)
        throw PluginError(fmt::format("the plugin directory {} cannot be read: {}", dir, std::strerror(error)));
    std::sort(kinds.begin(), kinds.end());
    return kinds;
}

std::vector<std::string> plugin_kinds(const PluginPath& path) {
    std::vector<std::string> kinds;
    for (auto& dir : path)
        for (auto& k : plugin_kinds(dir))
            if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
    std::sort(kinds.begin(), kinds.end());
    return kinds;
}

} // namespace moat
