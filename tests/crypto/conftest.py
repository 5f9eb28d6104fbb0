"""The kernel and its pure-Python twin side by side (see ``tests.crypto.kernels``)."""

from __future__ import annotations

import pytest

from sim.crypto import _reference
from tests.crypto.kernels import BUILT, SKIP_REASON, fastcrypto


@pytest.fixture(scope="module", params=["cython", "python"])
def backend(request):
    """Each kernel function, from the Cython kernel and from the pure-Python reference."""
    if request.param == "python":
        return _reference
    if not BUILT:
        pytest.skip(SKIP_REASON)
    return fastcrypto


@pytest.fixture
def kernel():
    """The compiled kernel ``sim._fastcrypto``; the test is skipped when it is not built."""
    if not BUILT:
        pytest.skip(SKIP_REASON)
    return fastcrypto
