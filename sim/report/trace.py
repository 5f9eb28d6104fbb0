"""Message traces: the exact bytes of every message, ``trace.jsonl``, a key log like
SSLKEYLOGFILE (``keylog.jsonl``), every actor's certificate, and sequence diagrams."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from rich.console import Console

from sim.protocol.api import role_of

#: what a trace directory holds (an existing one is only replaced with --force)
TRACE_OUTPUTS = ("trace.jsonl", "keylog.jsonl", "messages", "certs", "sequence.png", "summary.json")


#: messages drawn in the sequence diagrams (all of them are in trace.jsonl)
DIAGRAM_LIMIT = 200


class TraceWriter:
    """A Tracer and a KeyLog that write into one trace directory."""

    def __init__(self, out: Path, *, replace: bool = False) -> None:
        self.out = Path(out)
        messages = self.out / "messages"
        messages.mkdir(parents=True, exist_ok=True)
        if replace:  # only files this writer names: NNNN-<from>-to-<to>.xml, certs/<node>.pem
            for old in [
                *messages.glob("[0-9][0-9][0-9][0-9]-*-to-*.xml"),
                *messages.glob("[0-9][0-9][0-9][0-9]-*-to-*.der"),
                *(self.out / "certs").glob("*.pem"),
            ]:
                old.unlink()
        self._trace = (self.out / "trace.jsonl").open("w")
        self._keys = (self.out / "keylog.jsonl").open("w")
        self.seq = 0
        self.entries: list[dict] = []
        self.seen_keys: set[tuple[str, str]] = set()
        #: Kerberos service keys (principal, key), written as ``krb5.keytab`` at the close
        self.service_keys: list[tuple[str, bytes]] = []

    @property
    def key_count(self) -> int:
        """How many secrets the key log holds."""
        return len(self.seen_keys)

    def on_message(
        self,
        seq: int,
        t: float,
        sender: str,
        receiver: str,
        action: str,
        data: bytes,
        fault: str | None,
    ) -> None:
        """Tracer hook: write the exact bytes and one trace.jsonl line."""
        self.seq = seq
        # a KDC message is Kerberos DER, every other one SOAP
        name = f"{seq:04d}-{sender}-to-{receiver}.{'xml' if data[:1] == b'<' else 'der'}"
        (self.out / "messages" / name).write_bytes(data)
        entry = {
            "seq": seq,
            "t": round(t, 6),
            "from": sender,
            "to": receiver,
            "action": action,
            "bytes": len(data),
            "file": f"messages/{name}",
        }
        if fault:
            entry["fault"] = fault
        self.entries.append(entry)
        self._trace.write(json.dumps(entry) + "\n")

    def log(self, kind: str, key_id: str, key: bytes) -> None:
        """KeyLog hook: one keylog.jsonl line per secret (the first time it appears); ``seq``
        is the first message sent after it appeared, the one that carries or uses it."""
        if (kind, key_id) in self.seen_keys:
            return
        self.seen_keys.add((kind, key_id))
        if kind == "krb5-long-term-key" and "/" in key_id:  # a service's: into krb5.keytab
            self.service_keys.append((key_id, key))
        self._keys.write(
            json.dumps(
                {
                    "kind": kind,
                    "id": key_id,
                    "key": base64.b64encode(key).decode(),
                    "seq": self.seq + 1,
                }
            )
            + "\n"
        )

    def close(self) -> None:
        self._trace.close()
        self._keys.close()
        if self.service_keys:
            from sim.wire import kerberos_token

            (self.out / "krb5.keytab").write_bytes(kerberos_token.keytab_of(self.service_keys))

    def write_certificates(self, certificates: dict[str, bytes], client_names) -> None:
        """``certs/<node>.pem`` for every node that appears in the trace."""
        certs = self.out / "certs"
        certs.mkdir(exist_ok=True)
        nodes = {e["from"] for e in self.entries} | {e["to"] for e in self.entries}
        for node in sorted(nodes):
            role = role_of(node)
            actor = client_names(node) if role == "client" else role
            if actor in certificates:
                (certs / f"{node}.pem").write_bytes(certificates[actor])

    def print_diagram(self, console: Console | None = None) -> None:
        """The session as a sequence diagram in the terminal, one arrow per message."""
        console = console or Console()
        for line, style in diagram_lines(self.entries[:DIAGRAM_LIMIT]):
            console.print(line, style=style, highlight=False, soft_wrap=True)
        if len(self.entries) > DIAGRAM_LIMIT:
            console.print(f"... {len(self.entries) - DIAGRAM_LIMIT} more messages in trace.jsonl")

    def plot_diagram(self, path: Path, title: str = "") -> None:
        """The sequence diagram as a PNG: lanes per node, one arrow a message (the first
        ``DIAGRAM_LIMIT`` messages; trace.jsonl has them all)."""
        entries = self.entries[:DIAGRAM_LIMIT]
        if len(self.entries) > DIAGRAM_LIMIT:
            title = f"{title} (first {DIAGRAM_LIMIT} of {len(self.entries)} messages)"
        nodes = _lanes(entries)
        height = max(3, 0.45 * len(entries) + 1.5)
        fig, ax = plt.subplots(figsize=(2.6 * len(nodes) + 2, height))
        for i, node in enumerate(nodes):
            ax.axvline(i, color="0.6", lw=1)
            ax.text(i, 0.2, node, ha="center", va="bottom", fontsize=9, weight="bold")
        for row, entry in enumerate(entries, start=1):
            a, b = nodes.index(entry["from"]), nodes.index(entry["to"])
            color = "crimson" if entry.get("fault") else "tab:blue"
            ax.annotate(
                "", xy=(b, -row), xytext=(a, -row), arrowprops={"arrowstyle": "->", "color": color}
            )
            label = _label(entry)
            ax.text((a + b) / 2, -row + 0.12, label, ha="center", fontsize=8, color=color)
            ax.text(
                -0.55,
                -row,
                f"{entry['t'] * 1000:.1f} ms",
                ha="left",
                va="center",
                fontsize=7,
                color="0.35",
            )
        ax.set_ylim(-len(entries) - 0.8, 0.8)
        ax.set_xlim(-0.6, len(nodes) - 0.4)
        ax.axis("off")
        ax.set_title(
            (f"{title}\n" if title else "")
            + "message sequence, exact bytes on the wire (simulated arrival time at left)",
            fontsize=10,
        )
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)


def _lanes(entries: list[dict]) -> list[str]:
    order = {"client": 0, "intermediary": 1, "sts": 2, "provider": 3}
    nodes = {e["from"] for e in entries} | {e["to"] for e in entries}
    return sorted(nodes, key=lambda n: (order.get(role_of(n), 9), n))


def short_action(action: str) -> str:
    """``.../ws-trust/200512/RSTR/SCT`` -> ``RSTR/SCT``; ``urn:wssim:app:Process`` -> ``Process``."""
    parts = action.split("/")
    versions = [i for i, part in enumerate(parts) if part.isdigit()]
    if versions and versions[-1] + 1 < len(parts):
        return "/".join(parts[versions[-1] + 1 :])
    return action.replace(":", "/").rstrip("/").rsplit("/", 1)[-1] or action


def _label(entry: dict) -> str:
    text = f"{entry['seq']}. {short_action(entry['action'])} ({entry['bytes']} B)"
    return f"{text} FAULT {entry['fault']}" if entry.get("fault") else text


def diagram_lines(entries: list[dict]) -> list[tuple[str, str | None]]:
    """Text lines (and a rich style) of a sequence diagram: lanes, then one arrow a message."""
    nodes = _lanes(entries)
    if not nodes:
        return [("(no messages)", None)]

    def span(entry: dict) -> int:
        return max(1, abs(nodes.index(entry["from"]) - nodes.index(entry["to"])))

    # wide enough for every node name, and for every label over the lanes its arrow spans
    width = max(
        [14, *(len(n) + 3 for n in nodes), *(-(-(len(_label(e)) + 4) // span(e)) for e in entries)]
    )
    centers = [i * width + width // 2 for i in range(len(nodes))]
    total = width * len(nodes)

    def lifelines() -> list[str]:
        row = [" "] * total
        for c in centers:
            row[c] = "|"
        return row

    lines: list[tuple[str, str | None]] = [
        ("".join(f"{n:^{width}}" for n in nodes).rstrip(), "bold")
    ]
    for entry in entries:
        a, b = centers[nodes.index(entry["from"])], centers[nodes.index(entry["to"])]
        left, right = min(a, b), max(a, b)
        label_row, arrow_row = lifelines(), lifelines()
        label = _label(entry)
        if a == b:  # a node sending to itself: a short loop
            text = f"{label} (self)"
            label_row[a + 2 : a + 2 + len(text)] = text
        else:
            start = left + 1 + max(0, (right - left - 1 - len(label)) // 2)
            label_row[start : start + len(label)] = label
            arrow_row[left + 1 : right] = "-" * (right - left - 1)
            if a < b:
                arrow_row[right - 1] = ">"
            else:
                arrow_row[left + 1] = "<"
        style = "red" if entry.get("fault") else None
        lines.append(("".join(label_row).rstrip(), style))
        lines.append(("".join(arrow_row).rstrip(), style))
    return lines
