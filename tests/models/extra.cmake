# SPDX-License-Identifier: MIT
# Model tests read safetensors fixtures (no extra libraries); OpenMP when available.
find_package(OpenMP)
if(OpenMP_CXX_FOUND)
  target_link_libraries(test_${dir} PRIVATE OpenMP::OpenMP_CXX)
endif()
