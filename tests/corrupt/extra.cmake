# SPDX-License-Identifier: MIT
# The corruption suite needs libjpeg (jpeg_compression, ImageNet-C writer) and libpng (frost textures).
find_package(JPEG REQUIRED)
find_package(PNG REQUIRED)
find_package(Threads REQUIRED)
target_link_libraries(test_${dir} PRIVATE JPEG::JPEG PNG::PNG Threads::Threads)
