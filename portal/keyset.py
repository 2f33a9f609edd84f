"""Long lists, newest first: keyset pagination and counts that stop counting past a threshold.

A page is asked for by a cursor (the key of a row already shown) instead of an OFFSET, so a page 10,000 deep costs what
the first one does: `older=<cursor>` lists the rows after it in the list's order, `newer=<cursor>` the rows before it.
A count is exact up to COUNT_EXACT_UP_TO rows; past that, PostgreSQL's planner estimates it (shown as "about N")."""
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import reduce

from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import connections
from django.db.models import DateTimeField, Q, QuerySet

COUNT_EXACT_UP_TO = 10_000
CURSOR_PARAMS = ("older", "newer")  # the query parameters of a cursor (links that change the filters drop them)


@dataclass(frozen=True)
class ListCount:
    n: int
    exact: bool = True
    counted: int = COUNT_EXACT_UP_TO  # when estimated: the rows counted before counting stopped

    def __str__(self):
        if self.exact:
            return f"{self.n:,}"
        if self.n > self.counted:
            return f"about {self.n:,}"
        return f"more than {self.counted:,}"  # the planner guessed low: say only what the capped count saw


def planner_estimate(queryset: QuerySet) -> int:
    """The rows PostgreSQL's planner expects the query to return (0 where there is no planner to ask)."""
    connection = connections[queryset.db]
    if connection.vendor != "postgresql":
        return 0
    sql, params = queryset.order_by().values("pk").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def count_bounded(queryset: QuerySet, *, exact_up_to: int = COUNT_EXACT_UP_TO) -> ListCount:
    """Exact while the rows are few (counting stops at exact_up_to + 1), estimated past that."""
    capped = queryset.order_by().values("pk")[: exact_up_to + 1].count()
    if capped <= exact_up_to:
        return ListCount(capped)
    return ListCount(planner_estimate(queryset), exact=False, counted=exact_up_to)


@dataclass(frozen=True)
class KeysetPage:
    object_list: list
    older: str  # the cursor of the next (older) page, "" at the end
    newer: str  # the cursor of the previous (newer) page, "" on the first page
    count: ListCount

    @property
    def first(self) -> bool:
        return not self.newer

    def __iter__(self):
        return iter(self.object_list)

    def __len__(self):
        return len(self.object_list)


def _field(queryset: QuerySet, name: str):
    meta = queryset.model._meta
    return meta.pk if name == "pk" else meta.get_field(name)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _part(value) -> str:
    if isinstance(value, datetime):  # microseconds since the epoch: short in a URL, exact
        delta = value - _EPOCH
        return str((delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds)
    return str(value)


def cursor_encode(row, keys: tuple[str, ...]) -> str:
    return "_".join(_part(getattr(row, name)) for name in keys)


def cursor_decode(queryset: QuerySet, token: str, keys: tuple[str, ...]) -> tuple | None:
    """The key values of a cursor, or None for one that is not a cursor of this list (ignored: the first page)."""
    parts = token.split("_")
    if len(parts) != len(keys):
        return None
    values = []
    try:
        for name, part in zip(keys, parts, strict=True):
            field = _field(queryset, name)
            if isinstance(field, DateTimeField):
                values.append(_EPOCH + timedelta(microseconds=int(part)))
            else:
                values.append(field.to_python(part))
    except (ValidationError, FieldDoesNotExist, ValueError, TypeError, OverflowError):
        return None
    return tuple(values)


def _beyond(keys: tuple[str, ...], values: tuple, op: str) -> Q:
    """Rows strictly past `values` in the key order (op "lt": older; "gt": newer). The first key's bound is repeated on
    its own (`lte`/`gte`) so the database starts its index scan at the cursor instead of filtering from the top."""
    alternatives = [Q(**{f"{keys[i]}__{op}": values[i]}, **dict(zip(keys[:i], values[:i], strict=True)))
                    for i in range(len(keys))]
    condition = reduce(lambda a, b: a | b, alternatives)
    return Q(**{f"{keys[0]}__{op}e": values[0]}) & condition if len(keys) > 1 else condition


def keyset_page(queryset: QuerySet, *, keys: tuple[str, ...], size: int, older: str = "", newer: str = "",
                count: ListCount | None = None) -> KeysetPage:
    """One page of `queryset` in descending order of `keys` (the last one unique, e.g. ("queued_at", "pk")): the
    newest rows, or the rows older than the cursor `older`, or newer than the cursor `newer`."""
    ascending, descending = list(keys), [f"-{name}" for name in keys]
    count = count if count is not None else count_bounded(queryset)
    newer_values = cursor_decode(queryset, newer, keys) if newer else None
    older_values = cursor_decode(queryset, older, keys) if older and newer_values is None else None
    if newer_values is not None:
        rows = list(queryset.filter(_beyond(keys, newer_values, "gt")).order_by(*ascending)[: size + 1])
        more_newer, rows = len(rows) > size, rows[:size][::-1]
        if not rows:  # nothing newer than the cursor any more: the newest page
            return keyset_page(queryset, keys=keys, size=size, count=count)
        return KeysetPage(rows, older=cursor_encode(rows[-1], keys),
                          newer=cursor_encode(rows[0], keys) if more_newer else "", count=count)
    if older_values is not None:
        queryset = queryset.filter(_beyond(keys, older_values, "lt"))
    rows = list(queryset.order_by(*descending)[: size + 1])
    more_older, rows = len(rows) > size, rows[:size]
    return KeysetPage(rows, older=cursor_encode(rows[-1], keys) if more_older else "",
                      newer=cursor_encode(rows[0], keys) if older_values is not None and rows else "", count=count)
