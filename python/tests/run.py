# SPDX-License-Identifier: MIT
"""ctest entry for the Python package: runs pytest, exit code 77 (skipped) when pytest or numpy
is missing from this interpreter (install python3-pytest python3-numpy)."""
import sys

try:
    import numpy  # noqa: F401
    import pytest
except ImportError as e:
    print("python tests skipped: %s (install python3-pytest and python3-numpy)" % e)
    sys.exit(77)

sys.exit(pytest.main(["-p", "no:cacheprovider"] + sys.argv[1:]))
