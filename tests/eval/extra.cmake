# SPDX-License-Identifier: MIT
# The papers' protocols: the eval component (engine + corruptions + image I/O).
target_link_libraries(test_${dir} PRIVATE shiftnorm::eval)
