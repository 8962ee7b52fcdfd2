# Shared by toolchain-armhf.cmake and toolchain-arm64.cmake: a Debian cross
# compiler plus a sysroot holding only the target's libraries we link
# (unpacked Debian packages, see cmake/bundle.sh); glibc and libstdc++ come
# with the cross compiler in /usr/<triplet>. Set MOAT_TRIPLET and
# MOAT_QEMU (and MOAT_TARGET_FLAGS) first; MOAT_SYSROOT defaults to
# <build dir>/sysroot.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${MOAT_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${MOAT_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${MOAT_TRIPLET})
if(NOT MOAT_SYSROOT)
  set(MOAT_SYSROOT ${CMAKE_BINARY_DIR}/sysroot CACHE PATH "unpacked target packages")
endif()
# try_compile projects see these too
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES MOAT_TRIPLET MOAT_QEMU MOAT_SYSROOT MOAT_TARGET_FLAGS)

set(CMAKE_FIND_ROOT_PATH ${MOAT_SYSROOT} /usr/${MOAT_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(ENV{PKG_CONFIG_LIBDIR} "${MOAT_SYSROOT}/usr/lib/${MOAT_TRIPLET}/pkgconfig:${MOAT_SYSROOT}/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_SYSROOT_DIR} ${MOAT_SYSROOT})

# The sysroot's headers before /usr/include (which Debian's cross compilers
# search too, and which holds this machine's own versions); no notes about
# the GCC 7.1 ARM ABI change; the linker follows the sysroot's libraries' own
# dependencies.
set(CMAKE_CXX_FLAGS_INIT "-isystem ${MOAT_SYSROOT}/usr/include -Wno-psabi ${MOAT_TARGET_FLAGS}")
set(moat_rpath_link "-Wl,-rpath-link,${MOAT_SYSROOT}/usr/lib/${MOAT_TRIPLET}:${MOAT_SYSROOT}/lib/${MOAT_TRIPLET}")
set(CMAKE_EXE_LINKER_FLAGS_INIT ${moat_rpath_link})
set(CMAKE_SHARED_LINKER_FLAGS_INIT ${moat_rpath_link})
set(CMAKE_MODULE_LINKER_FLAGS_INIT ${moat_rpath_link})

# Binfmt is not registered here: ctest runs target programs through qemu,
# with glibc and libstdc++ from the cross compiler's directory and the
# sysroot's libraries (the build tree's RPATH does not name /lib/<triplet>).
set(CMAKE_CROSSCOMPILING_EMULATOR ${MOAT_QEMU} -L /usr/${MOAT_TRIPLET}
    -E LD_LIBRARY_PATH=${MOAT_SYSROOT}/lib/${MOAT_TRIPLET}:${MOAT_SYSROOT}/usr/lib/${MOAT_TRIPLET})
