from __future__ import annotations

import pytest

from sim.protocol import build_strategy


@pytest.fixture
def make(key_dir):
    def factory(name, options=None, **kwargs):
        return build_strategy(name, options, key_dir=key_dir, **kwargs)

    return factory
