# SPDX-License-Identifier: MIT
# The CLI's subcommands are headers under tools/shiftnorm_cli; their tests call cmd_<name>()
# directly. They need what the CLI links: libpng/libjpeg (plots, image folders) and threads.
find_package(PNG REQUIRED)
find_package(JPEG REQUIRED)
find_package(Threads REQUIRED)
target_include_directories(test_${dir} PRIVATE ${PROJECT_SOURCE_DIR}/tools/shiftnorm_cli)
target_link_libraries(test_${dir} PRIVATE PNG::PNG JPEG::JPEG Threads::Threads)
