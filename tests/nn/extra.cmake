# SPDX-License-Identifier: MIT
# Layer tests exercise the OpenMP-parallel paths when OpenMP is available.
find_package(OpenMP)
if(OpenMP_CXX_FOUND)
  target_link_libraries(test_${dir} PRIVATE OpenMP::OpenMP_CXX)
endif()
