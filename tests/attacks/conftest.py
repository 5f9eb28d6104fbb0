"""What the attack tests share: one key directory (the test CA and the actors' identities
are made once for all of them), and ``make``, a strategy with those keys (a module whose
tests build strategies another way defines its own)."""

from __future__ import annotations

import pytest

from sim.protocol import build_strategy


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("attack-keys")


@pytest.fixture
def make(key_dir):
    def factory(name, options=None):
        return build_strategy(name, options, key_dir=key_dir)

    return factory
