# SPDX-License-Identifier: MIT
# File formats and data sets: the io component (zlib for IDX .gz, libjpeg, libpng).
target_link_libraries(test_${dir} PRIVATE shiftnorm::io)
