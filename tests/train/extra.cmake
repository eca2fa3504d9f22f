# SPDX-License-Identifier: MIT
# Training tests: OpenMP when available (the resume test pins 1 thread for bitwise equality).
find_package(OpenMP)
if(OpenMP_CXX_FOUND)
  target_link_libraries(test_${dir} PRIVATE OpenMP::OpenMP_CXX)
endif()
