"""The message sequence of a trace as interactive charts: the sequence diagram (one arrow a
message, its size in the label) and the bytes of each message."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sim.report.figures import colors, figure
from sim.report.trace import _lanes as lanes
from sim.report.trace import short_action

#: messages drawn (all of them are in trace.jsonl)
LIMIT = 200


def _kind(entry: Mapping) -> str:
    return "fault" if entry.get("fault") else short_action(entry["action"])


def diagram(entries: Sequence[Mapping]) -> dict:
    """Lanes per node, one arrow a message from top to bottom, labelled with its size."""
    entries = list(entries[:LIMIT])
    nodes = lanes(entries)
    palette = colors(_kind(e) for e in entries)
    palette["fault"] = "crimson"
    data = []
    for kind in dict.fromkeys(_kind(e) for e in entries):
        x: list = []
        y: list = []
        text: list = []
        for entry in (e for e in entries if _kind(e) == kind):
            a, b = nodes.index(entry["from"]), nodes.index(entry["to"])
            label = (
                f"{entry['seq']}. {short_action(entry['action'])} "
                f"({entry['bytes']:,} B, t={float(entry['t']) * 1000:.1f} ms)"
                + (f" FAULT {entry['fault']}" if entry.get("fault") else "")
            )
            x += [a, b, None]
            y += [entry["seq"], entry["seq"], None]
            text += [label, label, None]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": kind,
                "x": x,
                "y": y,
                "text": text,
                "line": {"color": palette[kind], "width": 2},
                "marker": {"symbol": "arrow", "angleref": "previous", "size": 12},
                "hovertemplate": "%{text}<extra></extra>",
            }
        )
    annotations = [
        {
            "x": (nodes.index(e["from"]) + nodes.index(e["to"])) / 2,
            "y": e["seq"],
            "text": f"{short_action(e['action'])} {e['bytes']:,} B",
            "showarrow": False,
            "yshift": 9,
            "font": {"size": 10, "color": palette[_kind(e)]},
        }
        for e in entries
    ]
    height = max(320, 60 + 34 * len(entries))
    title = "Message sequence (exact bytes on the wire; hover for the simulated time)"
    if len(entries) == LIMIT:
        title += f": the first {LIMIT} messages"
    return figure(
        title,
        data,
        {
            "tickvals": list(range(len(nodes))),
            "ticktext": nodes,
            "side": "top",
            "range": [-0.5, len(nodes) - 0.5],
            "showgrid": True,
            "zeroline": False,
        },
        {
            "range": [len(entries) + 0.6, 0.4],  # time runs down
            "title": {"text": "message number (time runs down)"},
            "dtick": 1 if len(entries) <= 40 else None,
            "zeroline": False,
        },
        annotations=annotations,
        height=height,
    )


def sizes(entries: Sequence[Mapping]) -> dict:
    """Each message's size in bytes, coloured by what it is."""
    palette = colors(_kind(e) for e in entries)
    palette["fault"] = "crimson"
    data = []
    for kind in palette:
        chosen = [e for e in entries if _kind(e) == kind]
        if not chosen:
            continue
        data.append(
            {
                "type": "bar",
                "name": kind,
                "x": [e["seq"] for e in chosen],
                "y": [e["bytes"] for e in chosen],
                "marker": {"color": palette[kind]},
                "customdata": [f"{e['from']} → {e['to']}" for e in chosen],
                "hovertemplate": "message %{x} (%{customdata}): %{y:,} B<extra>"
                + kind
                + "</extra>",
            }
        )
    return figure(
        "Size of each message of the trace",
        data,
        {"title": {"text": "message number"}},
        {"title": {"text": "bytes on the wire (SOAP envelope)"}, "rangemode": "tozero"},
    )
