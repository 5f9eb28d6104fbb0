"""The rows of messages.csv (``MessageLog``): read back as messages.csv has always had them,
and opened as messages start and closed as they end (``open_row``/``close_row``): the rows
a finished record gives, in start order."""

from __future__ import annotations

import pytest

from sim.engine.chain import MessageRecord
from sim.engine.message_log import MessageLog


def _records(count: int = 12) -> list[MessageRecord]:
    """Records of every kind of value a row holds: sessions of three messages, both
    classes and strategies, faults, sizes over 32 bits."""
    return [
        MessageRecord(
            session=10_000_000 + i // 3,
            seq=i % 3,
            start=12.3456789 + i / 7,
            end=12.4 + i / 7 + i / 1e5,
            client_class=("web", "batch")[i % 2],
            strategy=("sct", "bearer")[i % 3 == 0],
            ok=i % 5 != 0,
            fault=None if i % 5 else "wsc:BadContextToken",
            request_bytes=6326 + i,
            response_bytes=2**40 + i,
            token_bytes=1519 * i,
            sts_exchanges=i % 2,
            retries=i % 3,
            recoveries=i % 4,
        )
        for i in range(count)
    ]


def _close(log: MessageLog, row: int, r: MessageRecord) -> None:
    log.close_row(
        row,
        r.end,
        r.ok,
        r.fault,
        r.request_bytes,
        r.response_bytes,
        r.token_bytes,
        r.sts_exchanges,
        r.retries,
        r.recoveries,
    )


def test_rows_opened_in_start_order_and_closed_in_any_order_read_as_their_records():
    records = _records()
    expected = MessageLog()
    for r in records:
        expected.append_record(0, r.strategy, r)
    log = MessageLog()
    rows = [
        log.open_row(
            r.session, r.seq, r.start, (log.ref(r.strategy), log.ref(r.client_class), log.ref(""))
        )
        for r in records
    ]
    for row in reversed(rows):  # messages end in another order than they started
        _close(log, row, records[row])
    assert list(log) == list(expected)
    assert list(log.tuples()) == list(expected.tuples())


def test_a_row_still_open_reads_as_a_message_still_running():
    log = MessageLog()
    refs = (log.ref("sct"), log.ref("default"), log.ref(""))
    log.open_row(3, 0, 2.5, refs)
    [row] = list(log)
    assert (row["end_s"], row["ok"], row["fault"], row["request_bytes"]) == (0.0, False, "", 0)
    assert (row["strategy"], row["class"], row["session"], row["start_s"]) == (
        "sct",
        "default",
        3,
        2.5,
    )
    assert [list(times) for times in log.times()] == [[2.5], [0.0]]


def test_a_replications_rows_join_the_result_under_its_number():
    part = MessageLog()
    for r in _records()[:4]:
        row = part.open_row(
            r.session, r.seq, r.start, (part.ref(r.strategy), part.ref("web"), part.ref(""))
        )
        _close(part, row, r)
    result = MessageLog()
    result.extend(part, replication=5)
    result.extend(part)
    assert [row["replication"] for row in result] == [5] * 4 + [0] * 4
    assert [dict(row, replication=0) for row in result[:4]] == list(part)


def _reference_row(replication: int, strategy: str, r: MessageRecord) -> dict:
    """The row as messages.csv has always had it."""
    return {
        "replication": replication,
        "strategy": strategy,
        "class": r.client_class,
        "session": r.session,
        "seq": r.seq,
        "start_s": round(r.start, 6),
        "end_s": round(r.end, 6),
        "latency_ms": round((r.end - r.start) * 1000, 4),
        "request_bytes": r.request_bytes,
        "response_bytes": r.response_bytes,
        "token_service_bytes": r.token_bytes,
        "sts_exchanges": r.sts_exchanges,
        "retries": r.retries,
        "recoveries": r.recoveries,
        "ok": r.ok,
        "fault": r.fault or "",
    }


def test_the_message_log_reads_back_the_rows_of_messages_csv():
    records = _records(50)
    log = MessageLog()
    for i, r in enumerate(records):
        log.append_record(i // 25, r.strategy, r)
    expected = [_reference_row(i // 25, r.strategy, r) for i, r in enumerate(records)]
    assert len(log) == 50
    assert list(log) == expected and log == expected
    assert log[-1] == expected[-1] and log[10:13] == expected[10:13]
    for row, reference in zip(log, expected, strict=True):
        assert [type(v) for v in row.values()] == [type(v) for v in reference.values()]
    with pytest.raises(IndexError):
        log[50]
    extra = {**expected[0], "session": 7}
    log.append(extra)  # a row given as a dict is kept as given
    assert log[50] == extra and len(log) == 51
    # the columnar read (outputs and the store): the same values, in FIELDS order, no dict
    assert list(log.tuples()) == [tuple(row[f] for f in MessageLog.FIELDS) for row in log]
    assert list(MessageLog.FIELDS) == list(expected[0])
    short = {"replication": 3, "strategy": "sct"}
    log.append(short)  # a given row lacking fields gives them empty, each through ``given``
    assert list(log.tuples(str.upper, given=repr))[-1] == tuple(
        repr(short.get(f, "")) for f in MessageLog.FIELDS
    )
    assert next(log.tuples(str.upper))[1:3] == ("BEARER", "WEB")
