# SPDX-License-Identifier: MIT
# Evaluation tests write and read PNG files (data/image_io.hpp): libpng, and libjpeg for that header.
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
target_link_libraries(test_${dir} PRIVATE PNG::PNG JPEG::JPEG)
# test_baselines.cpp includes corrupt/corrupt.hpp (name registry), whose batch API uses threads.
find_package(Threads REQUIRED)
target_link_libraries(test_${dir} PRIVATE Threads::Threads)
