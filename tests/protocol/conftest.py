from __future__ import annotations

import pytest

from sim.protocol import build_strategy


@pytest.fixture(scope="session")
def key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("protocol-keys")


@pytest.fixture
def make(key_dir):
    def factory(name, options=None, **kwargs):
        return build_strategy(name, options, key_dir=key_dir, **kwargs)

    return factory
