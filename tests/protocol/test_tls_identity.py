"""The TLSNego provider's private key reaches Python's ``ssl`` through a file only it can
read, removed once loaded."""

from __future__ import annotations

import os
import ssl
import tempfile

from sim.protocol.harness import Harness


def test_the_provider_key_file_is_private_and_removed_once_loaded(make, tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    modes = []
    load = ssl.SSLContext.load_cert_chain

    def spy(context, certfile, *args, **kwargs):
        modes.append(os.stat(certfile).st_mode & 0o777)
        return load(context, certfile, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    outcome = Harness(make("sct-tlsnego")).session([b"payload"])
    assert [r.ok for r in outcome.results] == [True]
    assert modes == [0o600]
    assert list(scratch.iterdir()) == []
