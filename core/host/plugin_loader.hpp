// Loading plugin shared objects: the plugin path, the checks before dlopen
// (name, owner, permissions), the entry symbol, and the ABI handshake.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "moat/plugin.hpp"

namespace moat {

/// Directories searched for plugins, in order; the first `<kind>.so` found wins.
using PluginPath = std::vector<std::string>;

/// A plugin could not be loaded; the message names the file and the reason.
class PluginError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// A loaded plugin file. Instances created from it must be destroyed before it.
class PluginLibrary {
public:
    ~PluginLibrary();
    PluginLibrary(const PluginLibrary&) = delete;
    PluginLibrary& operator=(const PluginLibrary&) = delete;

    const PluginDescriptor& descriptor() const { return *desc_; }
    std::span<const ConfigKey> keys() const { return {desc_->keys, desc_->key_count}; }
    const std::string& path() const { return path_; }
    std::span<const ClientCommand* const> commands() const {
        return {desc_->commands, desc_->commands ? desc_->command_count : 0};
    }

private:
    friend std::shared_ptr<PluginLibrary> load_plugin(const PluginPath&, std::string_view);
    PluginLibrary(std::string path, void* handle, const PluginDescriptor* desc)
        : path_(std::move(path)), handle_(handle), desc_(desc) {}
    std::string path_;
    void* handle_;
    const PluginDescriptor* desc_;
};

/// Load `<dir>/<kind>.so` from the first directory of `path` that has it.
/// Throws PluginError for: a kind with '/' or '..', no such file in any
/// directory (the message lists them), a file (or its directory) writable by
/// group/others or owned by another user than us or root, a file that is not
/// a plugin (no entry symbol), a plugin built against another SDK ABI, or a
/// descriptor that does not match the file.
std::shared_ptr<PluginLibrary> load_plugin(const PluginPath& path, std::string_view kind);
inline std::shared_ptr<PluginLibrary> load_plugin(const std::string& dir, std::string_view kind) {
    return load_plugin(PluginPath{dir}, kind);
}

/// Where `kind` would be loaded from: the first `<dir>/<kind>.so` of `path`, or "".
std::string find_plugin(const PluginPath& path, std::string_view kind);

/// Kinds of the plugin files in `dir`, sorted; none when `dir` does not exist.
/// Throws PluginError naming the directory when it cannot be opened or read.
std::vector<std::string> plugin_kinds(const std::string& dir);
/// Kinds found along `path`, each once (the first directory that has it), sorted.
/// Throws PluginError like the above.
std::vector<std::string> plugin_kinds(const PluginPath& path);

/// "dir1, dir2" for messages.
std::string describe(const PluginPath& path);

} // namespace moat
