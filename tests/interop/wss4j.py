"""Drive Apache WSS4J 1.6 (Debian's libwss4j-java) from the tests: compile the small Java
programs of ``tests/interop/java`` with javac against the jars in /usr/share/java, write a
batch file, run every message through one JVM. No wssim code takes part in the checks."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

JAVA_SOURCES = Path(__file__).resolve().parent / "java"
JARS = Path("/usr/share/java")
#: WSS4J and what it needs at run time, each with the Debian package that installs it
CLASSPATH = {
    "wss4j.jar": "libwss4j-java",
    "xmlsec.jar": "libxml-security-java",
    "bcprov.jar": "libbcprov-java",
    "commons-logging.jar": "libcommons-logging-java",
    "commons-codec.jar": "libcommons-codec-java",
    "slf4j-api.jar": "libslf4j-java",
    "slf4j-nop.jar": "libslf4j-java",
    "woodstox-core.jar": "libwoodstox-java",
    "stax2-api.jar": "libstax2-api-java",
}
#: simulated time 0.0 (sim.wire.xmlutil.EPOCH, restated: this module reads no wssim code)
EPOCH_MS = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp() * 1000)


def require_java() -> tuple[str, str]:
    """(java, javac), or the test fails naming the Debian packages to install."""
    java, javac = shutil.which("java"), shutil.which("javac")
    if java is None or javac is None:
        pytest.fail("java and javac are required (Debian package openjdk-17-jdk-headless)")
    missing = sorted({package for jar, package in CLASSPATH.items() if not (JARS / jar).exists()})
    if missing:
        pytest.fail(f"WSS4J's jars are missing from {JARS} (Debian packages {', '.join(missing)})")
    return java, javac


def classpath(*extra: Path) -> str:
    return ":".join([*(str(p) for p in extra), *(str(JARS / jar) for jar in CLASSPATH)])


def compile_java(out: Path) -> Path:
    """Compile every program of tests/interop/java into ``out``; returns it."""
    _, javac = require_java()
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p) for p in JAVA_SOURCES.glob("*.java"))
    result = subprocess.run(
        [javac, "-nowarn", "-encoding", "UTF-8", "-cp", classpath(), "-d", str(out), *sources],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return out


def run_java(classes: Path, main: str, *args: str, timeout: float = 300) -> str:
    java, _ = require_java()
    result = subprocess.run(
        [java, "-Xshare:auto", "-cp", classpath(classes), main, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


@dataclass
class Verdict:
    accepted: bool
    #: ACCEPTED: what WSS4J processed, e.g. {"signed": ["Body", "Timestamp"], ...};
    #: REFUSED: {"why": [message]}
    detail: dict[str, list[str]]

    def __str__(self) -> str:
        return ("accepted " if self.accepted else "REFUSED ") + json.dumps(self.detail)


@dataclass
class Batch:
    """What WSS4J is given (the CA, receivers' keys, passwords, context secrets) and the
    messages it is to check."""

    lines: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def trust(self, ca_pem: Path) -> None:
        self.lines.append(f"ca\t{ca_pem}")

    def key(self, name: str, key_pem: Path, cert_pem: Path) -> None:
        self.lines.append(f"key\t{name}\t{key_pem}\t{cert_pem}")

    def user(self, name: str, password: str) -> None:
        self.lines.append(f"user\t{name}\t{password}")

    def secret(self, identifier: str, key: bytes) -> None:
        self.lines.append(f"secret\t{identifier}\t{base64.b64encode(key).decode()}")

    def verify(self, label: str, key_name: str | None, at_s: float, message: Path) -> None:
        """Check ``message`` as the holder of key ``key_name`` at simulated time ``at_s``."""
        assert "\t" not in label and label not in self.labels
        self.labels.append(label)
        at_ms = EPOCH_MS + round(at_s * 1000)
        self.lines.append(f"verify\t{label}\t{key_name or '-'}\t{at_ms}\t{message}")

    def run(self, classes: Path, workdir: Path) -> dict[str, Verdict]:
        path = workdir / "wss4j-batch.tsv"
        path.write_text("\n".join(self.lines) + "\n")
        verdicts = {}
        for line in run_java(classes, "Wss4jCheck", str(path)).splitlines():
            label, status, detail = line.split("\t", 2)
            if status == "ACCEPTED":
                parts = [part.partition("=") for part in detail.split(";") if part]
                found = {name: values.split(",") if values else [] for name, _, values in parts}
                verdicts[label] = Verdict(True, found)
            else:
                verdicts[label] = Verdict(False, {"why": [detail]})
        assert sorted(verdicts) == sorted(self.labels), "WSS4J answered for other messages"
        return verdicts
