"""Set-up for every test the repository collects: the unit tests (tests/) and the notebooks
(notebooks/, through nbval), whose kernels inherit this process's environment."""
from __future__ import annotations

import os
import shutil
import tempfile

_STORE = None


def pytest_configure(config):
    """A fresh run store for the whole session, set before any notebook kernel starts (nbval
    starts one while collecting a notebook's first cell), so every test trains what it asks for
    and nothing lands in the developer's runs/store. A store named in NSDE_STORE is kept."""
    global _STORE
    if "NSDE_STORE" not in os.environ:
        _STORE = tempfile.mkdtemp(prefix="nsde-run-store-")
        os.environ["NSDE_STORE"] = _STORE


def pytest_unconfigure(config):
    global _STORE
    if _STORE is not None:
        os.environ.pop("NSDE_STORE", None)
        shutil.rmtree(_STORE, ignore_errors=True)
        _STORE = None
