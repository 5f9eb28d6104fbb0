"""What the attack tests share: ``make``, a strategy with the run's keys (``key_dir`` of
tests/conftest.py: the test CA and the actors' identities are made once for all of them; a
module whose tests build strategies another way defines its own)."""

from __future__ import annotations

import pytest

from sim.protocol import build_strategy


@pytest.fixture
def make(key_dir):
    def factory(name, options=None):
        return build_strategy(name, options, key_dir=key_dir)

    return factory
