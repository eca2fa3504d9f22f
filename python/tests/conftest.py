# SPDX-License-Identifier: MIT
import os
import pathlib

import pytest


@pytest.fixture(scope="session")
def shared_dir():
    """../shared beside the repository (data and fixtures; tests that need it skip without it)."""
    env = os.environ.get("SHIFTNORM_SHARED_DIR")
    return pathlib.Path(env) if env else pathlib.Path(__file__).resolve().parents[2].parent / "shared"
