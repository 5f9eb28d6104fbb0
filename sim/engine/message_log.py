"""The rows of messages.csv, kept compactly while a run goes on (``MessageLog``)."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence


class MessageLog(Sequence):
    """The rows of messages.csv, compact: one typed column per field (strings as indexes
    into a table of the distinct ones), about 80 bytes a row instead of a dict's 600.

    A sequence of row dicts (keys ``FIELDS``, which ``sim.report.outputs`` writes as
    messages.csv's columns), each built when read. A run opens a message's row as it
    starts (``open_row``) and fills it in as it ends (``close_row``); ``append_record``
    adds a finished ``MessageRecord``, ``append`` a row dict."""

    _INTS = (
        ("replication", "i"),
        ("session", "q"),
        ("seq", "i"),
        ("request_bytes", "q"),
        ("response_bytes", "q"),
        ("token_service_bytes", "q"),
        ("sts_exchanges", "i"),
        ("retries", "i"),
        ("recoveries", "i"),
    )
    _STRINGS = ("strategy", "class", "fault")
    #: the integer columns a row starts with at 0 (``open_row``)
    _ZEROED = tuple(name for name, _ in _INTS if name not in ("session", "seq"))
    #: the fields of a row, in order (messages.csv's columns)
    FIELDS = (
        "replication",
        "strategy",
        "class",
        "session",
        "seq",
        "start_s",
        "end_s",
        "latency_ms",
        "request_bytes",
        "response_bytes",
        "token_service_bytes",
        "sts_exchanges",
        "retries",
        "recoveries",
        "ok",
        "fault",
    )

    def __init__(self, rows: Iterable[Mapping] = ()) -> None:
        self._columns = {name: array(code) for name, code in self._INTS}
        self._zeroed = [self._columns[name] for name in self._ZEROED]
        self._start = array("d")
        self._end = array("d")
        self._ok = array("b")
        #: per string column, its values' indexes into ``_strings``
        self._refs = {name: array("i") for name in self._STRINGS}
        self._strategy_refs, self._class_refs, self._fault_refs = self._refs.values()
        self._strings: list[str] = []
        self._index: dict[str, int] = {}
        #: rows appended as dicts (not from a record): their own rounded values, kept as given
        self._rows: dict[int, dict] = {}
        #: (rows, start_s, end_s, latency_ms) rounded as written, computed once for the
        #: outputs that read them (messages.csv, results.sqlite), again when rows came since
        self._rounded: tuple | None = None
        self.extend(rows)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_rounded"] = None  # recomputed where needed: not worth its bytes
        return state

    def _rounded_columns(self) -> tuple[list, list, list]:
        """start_s, end_s and latency_ms of every row, rounded as messages.csv has them."""
        rounded = getattr(self, "_rounded", None)  # a log pickled before it had one
        if rounded is None or rounded[0] != len(self):
            start, end = self._start, self._end
            rounded = self._rounded = (
                len(self),
                [round(t, 6) for t in start],
                [round(t, 6) for t in end],
                [round((b - a) * 1000, 4) for a, b in zip(start, end, strict=True)],
            )
        return rounded[1:]

    def _ref(self, column: str, value: str) -> None:
        index = self._index.get(value)
        if index is None:
            index = self._index[value] = len(self._strings)
            self._strings.append(value)
        self._refs[column].append(index)

    def append_record(self, replication: int, strategy: str, record) -> None:
        """Add the row of a finished ``MessageRecord`` of ``strategy``."""
        columns = self._columns
        columns["replication"].append(replication)
        columns["session"].append(record.session)
        columns["seq"].append(record.seq)
        columns["request_bytes"].append(record.request_bytes)
        columns["response_bytes"].append(record.response_bytes)
        columns["token_service_bytes"].append(record.token_bytes)
        columns["sts_exchanges"].append(record.sts_exchanges)
        columns["retries"].append(record.retries)
        columns["recoveries"].append(record.recoveries)
        self._start.append(record.start)
        self._end.append(record.end)
        self._ok.append(bool(record.ok))
        self._ref("strategy", strategy)
        self._ref("class", record.client_class)
        self._ref("fault", record.fault or "")

    def open_row(self, session: int, seq: int, start: float, refs: tuple[int, int, int]) -> int:
        """Add the row of a message as it starts: not ended, no bytes, replication 0
        (``extend`` sets it); ``refs``: its strategy's, class's and fault's ``ref`` (the
        fault "" until ``close_row``). Returns its index."""
        row = len(self._start)
        for column in self._zeroed:
            column.append(0)
        columns = self._columns
        columns["session"].append(session)
        columns["seq"].append(seq)
        self._start.append(start)
        self._end.append(0.0)
        self._ok.append(0)
        strategy, label, fault = refs
        self._strategy_refs.append(strategy)
        self._class_refs.append(label)
        self._fault_refs.append(fault)
        return row

    def ref(self, value: str) -> int:
        """``value``'s index into the table of distinct strings (added when new)."""
        k = self._index.get(value)
        return self._new(value) if k is None else k

    def close_row(
        self,
        row: int,
        end: float,
        ok: bool,
        fault: str | None,
        request_bytes: int,
        response_bytes: int,
        token_bytes: int,
        sts_exchanges: int,
        retries: int,
        recoveries: int,
    ) -> None:
        """Fill in row ``row`` (``open_row``) as its message ends."""
        columns = self._columns
        self._end[row] = end
        self._ok[row] = 1 if ok else 0
        if fault:
            self._fault_refs[row] = self.ref(fault)
        columns["request_bytes"][row] = request_bytes
        columns["response_bytes"][row] = response_bytes
        columns["token_service_bytes"][row] = token_bytes
        columns["sts_exchanges"][row] = sts_exchanges
        columns["retries"][row] = retries
        columns["recoveries"][row] = recoveries
        self._rounded = None

    def times(self) -> tuple[array, array]:
        """Every row's start and end (0.0 while it runs) in seconds, unrounded."""
        return self._start, self._end

    def _new(self, value: str) -> int:
        """Add ``value`` to the table of distinct strings; its index."""
        k = self._index[value] = len(self._strings)
        self._strings.append(value)
        return k

    def _indexes(self, values: list[str]) -> list[int]:
        """The indexes of ``values`` into the table of distinct strings (new ones added)."""
        index, strings = self._index, self._strings
        found = []
        for value in values:
            k = index.get(value)
            if k is None:
                k = index[value] = len(strings)
                strings.append(value)
            found.append(k)
        return found

    def append(self, row: Mapping) -> None:
        """Add a row given as a dict (kept as it is)."""
        index = len(self)
        columns = self._columns
        for name, _ in self._INTS:
            columns[name].append(0)
        self._start.append(0.0)
        self._end.append(0.0)
        self._ok.append(0)
        for name in self._STRINGS:
            self._ref(name, "")
        self._rows[index] = dict(row)

    def extend(self, rows: Iterable[Mapping], replication: int | None = None) -> None:
        """Add ``rows``; a MessageLog's column by column, in ``replication`` when given
        (instead of the replication its rows name)."""
        if isinstance(rows, MessageLog):
            self._extend_log(rows, replication)
            return
        for row in rows:
            self.append(row)

    def _extend_log(self, other: MessageLog, replication: int | None = None) -> None:
        """Append another log's rows column by column (a replication run elsewhere)."""
        offset = len(self)
        for name, code in self._INTS:
            if name == "replication" and replication is not None:
                self._columns[name].extend(array(code, [replication]) * len(other))
            else:
                self._columns[name].extend(other._columns[name])
        self._start.extend(other._start)
        self._end.extend(other._end)
        self._ok.extend(other._ok)
        for name in self._STRINGS:
            refs = other._refs[name]
            # each distinct string indexed in the order the rows first name it (as a row
            # by row ``_ref`` would), then the column mapped at once
            mapping = dict.fromkeys(refs)
            for ref in mapping:
                mapping[ref] = self._indexes([other._strings[ref]])[0]
            self._refs[name].extend(map(mapping.__getitem__, refs))
        for index, row in other._rows.items():
            self._rows[offset + index] = dict(row)

    def __len__(self) -> int:
        return len(self._start)

    def _row(self, i: int) -> dict:
        given = self._rows.get(i)
        if given is not None:
            return dict(given)
        columns, refs, strings = self._columns, self._refs, self._strings
        start, end = self._start[i], self._end[i]
        return {
            "replication": columns["replication"][i],
            "strategy": strings[refs["strategy"][i]],
            "class": strings[refs["class"][i]],
            "session": columns["session"][i],
            "seq": columns["seq"][i],
            "start_s": round(start, 6),
            "end_s": round(end, 6),
            "latency_ms": round((end - start) * 1000, 4),
            "request_bytes": columns["request_bytes"][i],
            "response_bytes": columns["response_bytes"][i],
            "token_service_bytes": columns["token_service_bytes"][i],
            "sts_exchanges": columns["sts_exchanges"][i],
            "retries": columns["retries"][i],
            "recoveries": columns["recoveries"][i],
            "ok": bool(self._ok[i]),
            "fault": strings[refs["fault"][i]],
        }

    def tuples(
        self,
        strings: Callable[[str], object] | None = None,
        given: Callable[[object], object] | None = None,
    ) -> Iterator[tuple]:
        """Every row as a tuple of its ``FIELDS`` values, column by column (the same values
        as the row dicts, without building them); ``strings`` maps each distinct string of
        the text columns once. A row appended as a dict gives its values (missing ones ""),
        each through ``given``."""
        table = self._strings if strings is None else [strings(s) for s in self._strings]
        columns, refs = self._columns, self._refs
        start_s, end_s, latency_ms = self._rounded_columns()
        rows = zip(
            columns["replication"],
            [table[k] for k in refs["strategy"]],
            [table[k] for k in refs["class"]],
            columns["session"],
            columns["seq"],
            start_s,
            end_s,
            latency_ms,
            columns["request_bytes"],
            columns["response_bytes"],
            columns["token_service_bytes"],
            columns["sts_exchanges"],
            columns["retries"],
            columns["recoveries"],
            [ok != 0 for ok in self._ok],
            [table[k] for k in refs["fault"]],
            strict=True,
        )
        if not self._rows:
            yield from rows
            return
        for i, row in enumerate(rows):
            kept = self._rows.get(i)
            if kept is None:
                yield row
            else:
                values = [kept.get(f, "") for f in self.FIELDS]
                yield tuple(values if given is None else map(given, values))

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self._row(k) for k in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("message row out of range")
        return self._row(i)

    def __iter__(self) -> Iterator[dict]:
        for i in range(len(self)):
            yield self._row(i)

    def __eq__(self, other) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # mutable, like a list

    def __repr__(self) -> str:
        return f"MessageLog({len(self)} rows)"
