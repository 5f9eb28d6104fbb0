"""Without the compiled kernel wssim runs its pure-Python twin, says so once with the fix,
and its crypto tests still run (the twin's own; the comparisons with the kernel skip)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# As if the kernel were not built: an import of either module fails.
BLOCK = "import sys; sys.modules['sim._fastcrypto'] = None; sys.modules['sim._fastshape'] = None"
REPORT = """
import warnings
warnings.simplefilter("always")
with warnings.catch_warnings(record=True) as caught:
    import sim
    import sim.crypto as crypto
    key = crypto.derive_key(b"k", nonce=b"n")
print(crypto.BACKEND, key.hex())
for warning in caught:
    print(type(warning.message).__name__, "|", warning.message)
"""


def _python(code: str, **env: str) -> list[str]:
    environment = {k: v for k, v in os.environ.items() if k != "SIM_PURE_PYTHON"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**environment, **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.splitlines()


def test_a_missing_kernel_is_said_once_with_the_fix():
    import sim.crypto as crypto

    first, *warnings = _python(BLOCK + "\n" + REPORT)
    assert first == f"python {crypto.derive_key(b'k', nonce=b'n').hex()}"
    assert len(warnings) == 1
    name, message = warnings[0].split(" | ")
    assert name == "KernelMissingWarning"
    assert "pip install -e ." in message and "libssl-dev" in message
    assert "SIM_PURE_PYTHON=1" in message


def test_choosing_the_pure_python_backend_is_silent():
    first, *warnings = _python(BLOCK + "\n" + REPORT, SIM_PURE_PYTHON="1")
    assert first.startswith("python ")
    assert warnings == []


def test_a_built_kernel_is_silent():
    first, *warnings = _python(REPORT)
    assert first.startswith("cython ")
    assert warnings == []


@pytest.mark.slow
def test_the_crypto_tests_run_without_the_kernel():
    # -n 0: in this process, whose kernel is blocked (xdist's workers would import it)
    code = (
        BLOCK + "\nimport pytest\nraise SystemExit(pytest.main(['-q', '-p', 'no:cacheprovider', "
        "'-n', '0', "
        "'-W', 'ignore::sim._kernel.KernelMissingWarning', "
        "'tests/crypto/test_aes_cbc.py', 'tests/crypto/test_threads.py']))"
    )
    summary = _python(code)[-1]
    assert " passed" in summary and " skipped" in summary and "failed" not in summary
