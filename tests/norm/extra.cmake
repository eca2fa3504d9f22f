# SPDX-License-Identifier: MIT
# The layers' parallel kernels are checked for thread-count independence when OpenMP is available.
find_package(OpenMP)
if(OpenMP_CXX_FOUND)
  target_link_libraries(test_${dir} PRIVATE OpenMP::OpenMP_CXX)
endif()
