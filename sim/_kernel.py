"""Whether the compiled kernel (``sim._fastcrypto``, ``sim._fastshape``,
``sim._fastbase64``) is there, and the one warning that says so when it is not: without it
wssim runs its pure-Python twin, the same results several times slower.
``SIM_PURE_PYTHON=1`` chooses the twin, silently.

No heavy import here: ``import sim`` runs it.
"""

from __future__ import annotations

import os
import warnings
from importlib.util import find_spec

MODULES = ("sim._fastcrypto", "sim._fastshape", "sim._fastbase64")
FIX = (
    "build it with `pip install -e .` in the repository (it needs a C compiler and the "
    "OpenSSL headers, e.g. apt-get install build-essential libssl-dev), or run from "
    "outside the source tree after `pip install .`; SIM_PURE_PYTHON=1 chooses the "
    "pure-Python backend without this warning"
)


class KernelMissingWarning(RuntimeWarning):
    """The compiled kernel is missing: wssim runs its pure-Python backend."""


_warned = False


def pure_python_chosen() -> bool:
    """``SIM_PURE_PYTHON`` set to anything but empty or 0."""
    return os.environ.get("SIM_PURE_PYTHON", "") not in ("", "0")


def warn_missing(reason: str = "") -> None:
    """Say once that the kernel is missing (why, and the fix); nothing when the pure-Python
    backend was chosen."""
    global _warned
    if _warned or pure_python_chosen():
        return
    _warned = True
    why = f" ({reason})" if reason else ""
    warnings.warn(
        f"wssim's compiled kernel is missing{why}: running the pure-Python backend, "
        f"several times slower; {FIX}",
        KernelMissingWarning,
        stacklevel=3,
    )


def check_built() -> None:
    """Warn (once) when a kernel module is not found beside the sources ``sim`` is imported
    from, as when the uncompiled source tree shadows an installed wssim."""
    missing = [name for name in MODULES if find_spec(name) is None]
    if missing:
        warn_missing(f"{', '.join(missing)} not found")
