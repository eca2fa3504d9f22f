# SPDX-License-Identifier: MIT
# The denormal tests check every OpenMP thread when OpenMP is available.
find_package(OpenMP)
if(OpenMP_CXX_FOUND)
  target_link_libraries(test_${dir} PRIVATE OpenMP::OpenMP_CXX)
endif()
