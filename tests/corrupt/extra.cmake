# SPDX-License-Identifier: MIT
# The corruption suite (libjpeg for jpeg_compression and the ImageNet-C writer, libpng for frost).
target_link_libraries(test_${dir} PRIVATE shiftnorm::corrupt)
