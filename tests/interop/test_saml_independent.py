"""Every SAML assertion of every trace verified by an independent SAML implementation,
Shibboleth's OpenSAML C++ (Debian's opensaml-tools, ``samlsign``): the STS's enveloped
signature under the SAML signature profile (an exclusive-C14N, enveloped-signature
reference to the assertion's own ID), with the STS certificate, itself checked against the
test CA by OpenSSL. Negative controls: a changed statement and another signer's certificate
are refused."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from tests.interop.messages import assertions

#: traces whose messages carry assertions (the bearer, holder-of-key, sender-vouches strategies)
WITH_ASSERTIONS = (
    "bearer",
    "bearer-saml11",
    "bearer-per-message",
    "hok-symmetric",
    "hok-public",
    "sender-vouches",
)


@pytest.fixture(scope="module")
def samlsign() -> str:
    path = shutil.which("samlsign")
    if path is None:
        pytest.fail("samlsign is required (Debian package opensaml-tools; .ci/run installs it)")
    return path


def _samlsign(samlsign: str, assertion: Path, cert: Path) -> subprocess.CompletedProcess:
    # absolute paths: samlsign resolves relative ones under /etc/opensaml
    return subprocess.run(
        [samlsign, "-c", str(cert.resolve()), "-f", str(assertion.resolve())],
        capture_output=True,
        text=True,
        timeout=60,
    )


def _distinct_assertions(trace, out: Path) -> list[Path]:
    """Each distinct assertion of the trace (as sent, namespaces in scope), one file each."""
    seen: dict[bytes, Path] = {}
    for entry in trace.entries:
        root = etree.fromstring((trace.out / entry["file"]).read_bytes())
        for assertion in assertions(root):
            data = etree.tostring(assertion)
            if data not in seen:
                seen[data] = out / f"{trace.label}-{len(seen)}.xml"
                seen[data].write_bytes(data)
    return list(seen.values())


@pytest.mark.parametrize("label", WITH_ASSERTIONS)
def test_opensaml_verifies_every_assertion(traces, samlsign, tmp_path, label):
    trace = traces[label]
    sts = trace.out / "certs" / "sts-0.pem"
    ca = trace.key_dir / "wssim-test-ca-2048.pem"
    chain = subprocess.run(
        ["openssl", "verify", "-CAfile", str(ca), str(sts)], capture_output=True, text=True
    )
    assert chain.returncode == 0, chain.stdout + chain.stderr
    found = _distinct_assertions(trace, tmp_path)
    assert found, f"{label}: no assertion in the trace"
    version = "urn:oasis:names:tc:SAML:1.0:assertion" if label.endswith("saml11") else ":2.0:"
    for path in found:
        assert version in path.read_text()
        result = _samlsign(samlsign, path, sts)
        assert result.returncode == 0, (path.name, result.stderr)


@pytest.mark.parametrize("label", ["bearer", "bearer-saml11"])
def test_opensaml_refuses_a_changed_assertion_and_another_signer(traces, samlsign, tmp_path, label):
    trace = traces[label]
    [first, *_] = _distinct_assertions(trace, tmp_path)
    text = first.read_bytes()
    changed = tmp_path / "changed.xml"
    changed.write_bytes(text.replace(b">user-", b">usEr-", 1))
    assert changed.read_bytes() != text
    assert _samlsign(samlsign, changed, trace.out / "certs" / "sts-0.pem").returncode != 0
    other = trace.out / "certs" / "provider-0.pem"
    assert _samlsign(samlsign, first, other).returncode != 0
