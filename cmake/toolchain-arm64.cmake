# 64-bit ARM (Ekrano GX, Raspberry Pi 5 images).
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(MOAT_TRIPLET aarch64-linux-gnu)
set(MOAT_QEMU qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/toolchain-common.cmake)
