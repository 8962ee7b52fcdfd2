# 32-bit ARMv7 hard-float (Cerbo GX, Venus GX, Raspberry Pi 2/3/4 images).
set(CMAKE_SYSTEM_PROCESSOR arm)
set(MOAT_TRIPLET arm-linux-gnueabihf)
set(MOAT_QEMU qemu-arm-static)
# 64-bit file offsets: readdir() of a 32-bit program fails with EOVERFLOW
# where the kernel hands out 64-bit directory offsets (qemu on a 64-bit host,
# large file systems), and the plugin directory would look empty.
set(MOAT_TARGET_FLAGS "-D_FILE_OFFSET_BITS=64")
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-common.cmake)
