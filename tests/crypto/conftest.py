from __future__ import annotations

import pytest

from sim import _fastcrypto
from sim.crypto import _reference


@pytest.fixture(scope="module", params=["cython", "python"])
def backend(request):
    """Each kernel function, from the Cython kernel and from the pure-Python reference."""
    return _fastcrypto if request.param == "cython" else _reference
