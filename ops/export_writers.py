"""Writing an export's file without holding the result anywhere: on PostgreSQL one `COPY (SELECT …) TO STDOUT`
streamed straight into the file (the CSV guard and the JSON built in SQL); elsewhere (SQLite) keyset-paged chunks
written by Python. Both hash the file as it is written and report rows done as they go."""
import csv
import hashlib
import io
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import connection, transaction

from portal.spreadsheet import spreadsheet_safe

BUFFER_BYTES = 1 << 20  # written (and hashed) a MiB at a time
PYTHON_CHUNK_ROWS = 5000  # rows per keyset page on the Python path
PROGRESS_SECONDS = 1.0

# portal.spreadsheet's formula guard, as SQL for COPY.
_SQL_FORMULA_STARTS = "('=', '+', '-', '@', E'\\t', E'\\r')"

TEXT, INT, TIME, JSON, UUID, IP = "text", "int", "time", "json", "uuid", "ip"
PLAIN = "plain"  # text the portal itself writes from a fixed vocabulary (choices, hex hashes): no guard needed


@dataclass(frozen=True)
class Column:
    name: str  # the header / JSON key
    lookup: str  # the queryset's values_list() lookup
    type: str = TEXT


@dataclass(frozen=True)
class Written:
    rows: int
    size: int
    sha256: str


class _File:
    """The export file, buffered: each MiB is hashed and written once."""

    def __init__(self, path: Path):
        self.handle = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.digest, self.size, self.buffer = hashlib.sha256(), 0, bytearray()

    def write(self, data) -> None:
        self.buffer += data
        if len(self.buffer) >= BUFFER_BYTES:
            self.flush()

    def flush(self) -> None:
        self.digest.update(self.buffer)
        self.handle.write(self.buffer)
        self.size += len(self.buffer)
        self.buffer.clear()

    def close(self) -> None:
        self.flush()
        self.handle.close()


class _Progress:
    """Reports the rows written so far every PROGRESS_SECONDS from a thread of its own: the COPY keeps this thread's
    database connection busy, so the job's row is updated on the reporting thread's connection."""

    def __init__(self, report: Callable[[int], None]):
        self.rows, self._report, self._stop = 0, report, threading.Event()
        self._thread = threading.Thread(target=self._run, name="export-progress", daemon=True)

    def _run(self):
        try:
            while not self._stop.wait(PROGRESS_SECONDS):
                self._report(self.rows)
        finally:
            connection.close()  # this thread's own connection

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def write_export(queryset, columns: list[Column], *, key: str, fmt: str, path: Path,
                 progress: Callable[[int], None]) -> Written:
    """Write the queryset's rows (ordered by `key`, ascending) as CSV with a header, or as JSON Lines."""
    out = _File(path)
    try:
        if connection.vendor == "postgresql":
            with _Progress(progress) as reporter:
                rows = _copy_postgres(queryset, columns, key, fmt, out, reporter)
        else:
            rows = _write_python(queryset, columns, key, fmt, out, progress)
    finally:
        out.close()
    return Written(rows, out.size, out.digest.hexdigest())


def _sql_csv(column: str, kind: str) -> str:
    if kind == TIME:
        return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"')"""
    if kind in (INT, UUID):
        return f"{column}::text"
    if kind == PLAIN:
        return column
    if kind == IP:
        return f"host({column})"
    text = f"{column}::text" if kind == JSON else column
    return f"CASE WHEN left({text}, 1) IN {_SQL_FORMULA_STARTS} THEN '''' || {text} ELSE {text} END"


def _quoted(name: str) -> str:
    return connection.ops.quote_name(name)


def _copy_sql(queryset, columns: list[Column], key: str, fmt: str) -> tuple[str, tuple]:
    inner, params = queryset.order_by().values_list(*[c.lookup for c in columns]).query.sql_with_params()
    names = ", ".join(_quoted(c.name) for c in columns)  # the inner query's columns, renamed to the export's names
    order = _quoted(next(c.name for c in columns if c.lookup == key))
    if fmt == "csv":
        select = ", ".join(f'{_sql_csv(f"export.{_quoted(c.name)}", c.type)} AS {_quoted(c.name)}' for c in columns)
        options = "FORMAT csv, HEADER"
    else:
        select = "row_to_json(export)::text"
        # CSV format with a quote and a delimiter that JSON text never holds (PostgreSQL escapes control characters
        # in JSON): each line goes out exactly as built, where the text format would double every backslash.
        options = "FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02'"
    sql = f"COPY (SELECT {select} FROM ({inner}) AS export ({names}) ORDER BY export.{order}) TO STDOUT WITH ({options})"
    return sql, params


def _copy_postgres(queryset, columns, key, fmt, out: _File, reporter: _Progress) -> int:
    sql, params = _copy_sql(queryset, columns, key, fmt)
    buffer, rows = out.buffer, 0
    with transaction.atomic(), connection.cursor() as cursor:
        # Rows leave in key order along its index: a sort of a million rows (the planner's choice when it thinks a
        # scan is cheaper) would spill the whole result into a temporary file on the server.
        cursor.execute("SET LOCAL enable_sort = off")
        raw = cursor.cursor  # psycopg's own cursor: Django's wrapper has no copy()
        with raw.copy(sql, params) as copy:
            for data in copy:  # one row at a time, as libpq hands them over: kept cheap (local names only)
                buffer += data
                rows += 1
                if len(buffer) >= BUFFER_BYTES:
                    out.flush()
                    reporter.rows = rows
        return raw.rowcount


def _python_cell(value, kind: str, fmt: str):
    if value is None:
        return "" if fmt == "csv" else None
    if kind == TIME:
        return value.isoformat(timespec="microseconds")
    if kind == UUID:
        return str(value)
    if kind == JSON:
        return json.dumps(value, sort_keys=True) if fmt == "csv" else value
    return spreadsheet_safe(value) if fmt == "csv" and kind in (TEXT, IP) else value


def _write_python(queryset, columns, key, fmt, out: _File, progress) -> int:
    """Keyset pages of PYTHON_CHUNK_ROWS (each its own short query: no cursor held open between them)."""
    lookups, names = [c.lookup for c in columns], [c.name for c in columns]
    at = lookups.index(key)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    if fmt == "csv":
        writer.writerow([c.name for c in columns])
    rows, last = 0, None
    base = queryset.order_by(key).values_list(*lookups)
    while True:
        page = list((base.filter(**{f"{key}__gt": last}) if last is not None else base)[:PYTHON_CHUNK_ROWS])
        for row in page:
            cells = [_python_cell(v, c.type, fmt) for v, c in zip(row, columns, strict=True)]
            if fmt == "csv":
                writer.writerow(cells)
            else:
                text.write(json.dumps(dict(zip(names, cells, strict=True))) + "\n")
        out.write(text.getvalue().encode())
        text.seek(0)
        text.truncate()
        rows += len(page)
        progress(rows)
        if len(page) < PYTHON_CHUNK_ROWS:
            return rows
        last = page[-1][at]
