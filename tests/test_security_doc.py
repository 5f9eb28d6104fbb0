"""docs/security.md names every check a receiver refuses with, so a reader of the adversary's
statistics (``attacks.<attack>.refused`` counts by check) finds what each one means."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHECK = re.compile(r'check="([a-z_-]+)"')


def _checks_in_code() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "sim").rglob("*.py"):
        names.update(CHECK.findall(path.read_text(encoding="utf-8")))
    return names


def test_every_check_a_receiver_refuses_with_is_documented():
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`([a-z_-]+)`", doc))
    checks = _checks_in_code()
    assert len(checks) > 30  # the pattern still finds the checks
    assert sorted(checks - documented) == []
