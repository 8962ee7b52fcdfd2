# moat_add_plugin(<kind> <sources>...)
#
# Builds the plugin <kind>.so against the moat SDK (target moat::sdk): C++20,
# every symbol hidden but the entry symbol MOAT_PLUGIN writes (so the host can
# unload it), no undefined symbols left (-z defs), and installed into
# <prefix>/lib/moat-victron/plugins, where the host looks for its plugins.
# The target is named plugin-<kind>; add libraries to it as usual.
#
# MOAT_PLUGIN_OUTPUT_DIR, when set, is where the .so is written in the build tree.
include_guard(GLOBAL)
include(GNUInstallDirs)

function(moat_add_plugin kind)
  add_library(plugin-${kind} MODULE ${ARGN})
  target_link_libraries(plugin-${kind} PRIVATE moat::sdk)
  target_compile_features(plugin-${kind} PRIVATE cxx_std_20)
  if(NOT MOAT_FUZZ)  # clang's sanitizer runtime lives in the executable
    target_link_options(plugin-${kind} PRIVATE -Wl,-z,defs)
  endif()
  set_target_properties(plugin-${kind} PROPERTIES
    PREFIX "" OUTPUT_NAME ${kind}
    CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON
    INSTALL_RPATH "$ORIGIN/../..")
  if(MOAT_PLUGIN_OUTPUT_DIR)
    set_target_properties(plugin-${kind} PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${MOAT_PLUGIN_OUTPUT_DIR})
  endif()
  install(TARGETS plugin-${kind} LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/moat-victron/plugins)
  set_property(GLOBAL APPEND PROPERTY MOAT_PLUGIN_TARGETS plugin-${kind})
endfunction()
