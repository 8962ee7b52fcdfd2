// Loading plugin shared objects: the checks before dlopen (name, owner,
// permissions), the entry symbol, and the ABI handshake.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "moat/plugin.hpp"

namespace moat {

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

private:
    friend std::shared_ptr<PluginLibrary> load_plugin(const std::string&, std::string_view);
    PluginLibrary(std::string path, void* handle, const PluginDescriptor* desc)
        : path_(std::move(path)), handle_(handle), desc_(desc) {}
    std::string path_;
    void* handle_;
    const PluginDescriptor* desc_;
};

/// Load `<dir>/<kind>.so`. Throws PluginError for: a kind with '/' or '..',
/// a missing file, a file (or directory) writable by group/others or owned by
/// another user than us or root, a file that is not a plugin (no entry
/// symbol), an ABI mismatch, or a descriptor that does not match the file.
std::shared_ptr<PluginLibrary> load_plugin(const std::string& dir, std::string_view kind);

/// Kinds of the plugin files in `dir` (for --list-plugins), sorted.
std::vector<std::string> plugin_kinds(const std::string& dir);

} // namespace moat
