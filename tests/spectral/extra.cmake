# SPDX-License-Identifier: MIT
# spectrum::batch is OpenMP-parallel when available: the thread-count independence test needs it.
find_package(OpenMP)
if(OpenMP_CXX_FOUND)
  target_link_libraries(test_${dir} PRIVATE OpenMP::OpenMP_CXX)
endif()
