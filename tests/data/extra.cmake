# SPDX-License-Identifier: MIT
# Image I/O tests need libjpeg and libpng.
find_package(JPEG REQUIRED)
find_package(PNG REQUIRED)
find_package(Threads REQUIRED)
target_link_libraries(test_${dir} PRIVATE JPEG::JPEG PNG::PNG Threads::Threads)
# Engine data loaders (IDX .gz) need zlib.
find_package(ZLIB REQUIRED)
target_link_libraries(test_${dir} PRIVATE ZLIB::ZLIB)
