"""Fixtures shared by every layer's tests."""

from __future__ import annotations

import shutil

import pytest

from sim.wire.keys import KeyStore


@pytest.fixture(scope="session")
def keystore(tmp_path_factory) -> KeyStore:
    """A test CA and actors' identities, made once per test session."""
    return KeyStore(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    """The xmlsec1 command, the independent XML Signature / Encryption implementation."""
    path = shutil.which("xmlsec1")
    if path is None:
        pytest.fail("xmlsec1 is required (Debian package xmlsec1; .ci/run installs it)")
    return path
