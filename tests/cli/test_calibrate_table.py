"""The calibrate table shows each HTTP figure in the unit its profile key names."""

from __future__ import annotations

import pytest

from sim.cli.calibrate import http_cells


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("server_request_us", ("http server request", "337.3 µs")),
        ("client_tls_connection_us", ("http client tls connection", "337.3 µs")),
        ("server_byte_ns", ("http server byte", "337.30 ns")),
        ("server_idle_us_per_s", ("http server idle", "337 µs a second")),
    ],
)
def test_each_http_figure_is_shown_in_the_unit_of_its_key(key, shown):
    assert http_cells(key, 337.3) == shown
