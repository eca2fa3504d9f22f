# SPDX-License-Identifier: MIT
# The attack protocol and its report (PNG charts) belong to the eval component.
target_link_libraries(test_${dir} PRIVATE shiftnorm::eval)
