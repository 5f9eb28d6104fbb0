"""A scenario as TOML text (what a report shows) and the differences between two scenarios."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from sim.results.sources import flatten

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(name: str) -> str:
    return name if _BARE.match(name) else json.dumps(name)


def toml_value(value) -> str:
    """A value as TOML writes it: strings quoted, lists in brackets, true/false."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        inner = ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return "{ " + inner + " }" if inner else "{}"
    return json.dumps(str(value))


def to_toml(data: Mapping, path: tuple[str, ...] = ()) -> str:
    """``data`` (a scenario as loaded) written as TOML: scalars first, then one table each."""
    lines: list[str] = []
    tables = []
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            tables.append((key, value))
        elif value is not None:
            lines.append(f"{_key(key)} = {toml_value(value)}")
    text = "\n".join(lines)
    for key, value in tables:
        sub = to_toml(value, (*path, key))
        has_scalars = any(not isinstance(v, Mapping) or not v for v in value.values())
        header = f"[{'.'.join(_key(k) for k in (*path, key))}]" if has_scalars else ""
        block = "\n".join(part for part in (header, sub) if part)
        text = f"{text}\n\n{block}" if text else block
    return text


def scenario_diff(a: Mapping, b: Mapping) -> list[tuple[str, object, object]]:
    """The dotted keys whose values differ between two scenarios: (key, in a, in b); a key
    missing on one side shows as None there."""
    flat_a, flat_b = flatten(a), flatten(b)
    keys = list(dict.fromkeys([*flat_a, *flat_b]))
    return [(k, flat_a.get(k), flat_b.get(k)) for k in keys if flat_a.get(k) != flat_b.get(k)]
