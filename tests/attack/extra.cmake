# SPDX-License-Identifier: MIT
# The attack protocol's report writes PNG charts (data/image_io.hpp: libpng, and libjpeg for that header).
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
target_link_libraries(test_${dir} PRIVATE PNG::PNG JPEG::JPEG)
