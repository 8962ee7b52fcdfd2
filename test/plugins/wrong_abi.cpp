// Written by hand (not with MOAT_PLUGIN) to claim a future descriptor layout.
#include <moat/plugin.hpp>

extern "C" __attribute__((visibility("default"))) const moat::PluginDescriptor* moat_plugin_entry() {
    static const moat::PluginDescriptor d{moat::abi_major + 1, 0, sizeof(moat::PluginDescriptor), "9.9.9",
                                          "0000000000000000", "wrong_abi", "1.0", "test: ABI from the future",
                                          nullptr, 0, true, nullptr, nullptr, nullptr, 0};
    return &d;
}
