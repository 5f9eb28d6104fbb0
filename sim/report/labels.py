"""What the plots and the report call things: the parts of a message's bytes, the groups of
operations, the axis label (with its unit) of a scenario key. No plotting library here."""

from __future__ import annotations

from collections.abc import Mapping

#: the file formats ``--plot-format`` offers: PNG for screens, SVG and PDF (vector) for papers
PLOT_FORMATS = ("png", "svg", "pdf")

PART_LABELS = {
    "request": "application request",
    "response": "application response",
    "token_service": "token service (RST/RSTR, amortized)",
}


#: the RSA operations the tables count as "RSA ops per message"
RSA_OPS = ("rsa_sign", "rsa_verify", "rsa_encrypt", "rsa_decrypt", "rsa_keygen")
#: the server roles in the order the tables show them (a message's path)
ROLE_ORDER = ("intermediary", "sts", "provider")


def capacity_columns(summary: Mapping) -> tuple[dict, list[tuple[str, str]]]:
    """The strategies of ``summary`` that have a ``capacity`` section, and the (role,
    resource) pairs of their service demands in column order: the capacity tables' rows and
    columns, terminal and HTML alike."""
    strategies = {n: s for n, s in summary["strategies"].items() if s.get("capacity")}
    columns = sorted(
        {
            (role, resource)
            for stats in strategies.values()
            for role, resources in (stats["capacity"].get("demand_ms") or {}).items()
            for resource in resources
        }
    )
    return strategies, columns


PUBLIC_KEY_OPS = (
    "rsa_sign",
    "rsa_verify",
    "rsa_encrypt",
    "rsa_decrypt",
    "rsa_keygen",
    "tls_handshake",
)
SYMMETRIC_AND_XML_OPS = (
    "hmac",
    "p_sha1",
    "ut_derive",
    "aes_encrypt",
    "aes_decrypt",
    "aes_gcm_encrypt",
    "aes_gcm_decrypt",
    "c14n",
    "digest",
    "xml_parse",
    "xml_serialize",
    "cache_lookup",
)


def other_ops(stats: Mapping) -> tuple[str, ...]:
    """Every op but the public-key ones: the symmetric, hashing and XML ops in their order,
    then any other the strategies count (TLS records, replay lookups, ...)."""
    counted = {op for s in stats.values() for op in s["crypto_ops_per_app_message"]}
    return SYMMETRIC_AND_XML_OPS + tuple(
        sorted(counted - set(PUBLIC_KEY_OPS) - set(SYMMETRIC_AND_XML_OPS))
    )


def axis_label(key: str) -> str:
    """An axis label for a scenario key, with its unit."""
    units = {
        "workload.rate": "offered load, workload.rate (sessions/s)",
        "workload.users": "closed workload, workload.users (users)",
        "workload.messages_per_session": "application messages per session",
        "workload.payload_bytes": "payload (bytes)",
        "run.duration_s": "run.duration_s (s)",
    }
    if key in units:
        return units[key]
    if key.endswith(".nodes"):
        return f"{key} (nodes)"
    if key.endswith(".cores"):
        return f"{key} (cores per node)"
    if key.endswith("_ms"):
        return f"{key} (ms)"
    if key.endswith("_mbps"):
        return f"{key} (Mbit/s)"
    return key
