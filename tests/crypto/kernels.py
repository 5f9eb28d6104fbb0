"""The compiled kernel when it is built, and its pure-Python twin: the comparisons between
them need the kernel; the twin's own tests (against OpenSSL, libxml2, the vectors) do not."""

from __future__ import annotations

import pytest

from sim.crypto import _reference

try:
    from sim import _fastcrypto, _fastshape
except ImportError:  # not built: the pure-Python twin alone is tested
    _fastcrypto = _fastshape = None

fastcrypto = _fastcrypto
fastshape = _fastshape
BUILT = fastcrypto is not None
SKIP_REASON = "the Cython kernel is not built (pip install -e . builds it)"
requires_kernel = pytest.mark.skipif(not BUILT, reason=SKIP_REASON)
#: Every backend there is: the kernel (when built) and the twin.
BACKENDS = (fastcrypto, _reference) if BUILT else (_reference,)
