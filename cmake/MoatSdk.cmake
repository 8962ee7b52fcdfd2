# The SDK's version header: the SDK version and an ABI fingerprint that the
# plugin loader compares (docs/plugin-sdk.md, "Compatibility").
#
# The fingerprint hashes everything a plugin's compiled code depends on: the
# text of every public header (a moved member, an inline function, a changed
# default) and the versions of the libraries whose types those headers use.
# Any change gives a new fingerprint; a plugin must then be rebuilt.
#
# moat_sdk_fingerprint(<out-var> <include-dir>)
# moat_write_sdk_header(<include-dir> <out-dir> <version> [<fingerprint-var>])
#   writes <out-dir>/moat/sdk_version.hpp for the headers in <include-dir>/moat.

function(moat_sdk_fingerprint out include_dir)
  file(GLOB headers ${include_dir}/moat/*.hpp)
  list(SORT headers)
  set(text "")
  foreach(h ${headers})
    get_filename_component(name ${h} NAME)
    if(name STREQUAL "sdk_version.hpp")
      continue()
    endif()
    file(SHA256 ${h} digest)
    string(APPEND text "${name}=${digest}\n")
  endforeach()
  # The third-party types that still appear in the SDK headers.
  string(APPEND text "sdbus-c++=${sdbus-c++_VERSION}\nlibuv=${LIBUV_VERSION}\nfmt=${fmt_VERSION}\n")
  if(EXISTS /usr/include/toml++/impl/version.h)
    file(STRINGS /usr/include/toml++/impl/version.h toml_version REGEX "define TOML_LIB_(MAJOR|MINOR|PATCH)")
    string(APPEND text "toml++=${toml_version}\n")
  endif()
  string(APPEND text "cxx=${CMAKE_CXX_COMPILER_ID}-${CMAKE_CXX_STANDARD}\n")
  string(SHA256 digest "${text}")
  string(SUBSTRING ${digest} 0 16 digest)
  set(${out} ${digest} PARENT_SCOPE)
  # Re-run CMake when a header changes, so the fingerprint follows it.
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${headers})
endfunction()

function(moat_write_sdk_header include_dir out_dir version)
  moat_sdk_fingerprint(fingerprint ${include_dir})
  set(MOAT_SDK_VERSION ${version})
  set(MOAT_ABI_FINGERPRINT ${fingerprint})
  configure_file(${PROJECT_SOURCE_DIR}/cmake/sdk_version.hpp.in ${out_dir}/moat/sdk_version.hpp @ONLY)
  if(ARGC GREATER 3)
    set(${ARGV3} ${fingerprint} PARENT_SCOPE)
  endif()
endfunction()
