"""Rollups of token tests: outcomes per UTC hour and day, and each hop's latency as an hourly histogram. Kept as tests
finish (services.outcomes calls tests_counted and hops_counted inside its transaction) and rebuilt from the tests by
`manage.py rollups_backfill`; the dashboard and charts read them instead of scanning tests or steps."""
from collections import Counter
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Case, Count, IntegerField, Sum, Value, When
from django.db.models.functions import TruncDay, TruncHour

from exchange.models import HopLatencyRollup, TokenTest, TokenTestRollup, TokenTestStep
from portal.services import Actor, audit_record

# Upper bounds of the latency histogram's buckets (a superset of ops.metrics' so the two agree); the last is +Inf.
LATENCY_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
OVERFLOW_MS = 2_147_483_647  # the +Inf bucket's le_ms (a unique key cannot hold NULL as one value)
HOUR, DAY = TokenTestRollup.Period.HOUR, TokenTestRollup.Period.DAY
PERIODS = {HOUR: timedelta(hours=1), DAY: timedelta(days=1)}


def bucket_start(at: datetime, period: str) -> datetime:
    at = at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if period == DAY else at


def le_of(duration_ms: int) -> int:
    """The upper bound of the histogram bucket a duration falls in."""
    return next((b for b in LATENCY_BUCKETS_MS if duration_ms <= b), OVERFLOW_MS)


def _upsert(model, keys: tuple[str, ...], rows: dict[tuple, dict[str, int]]) -> None:
    """Add each row's counts to its bucket, creating it if missing: one INSERT … ON CONFLICT DO UPDATE, atomic under
    concurrent writers on PostgreSQL and SQLite alike. Rows go in key order, so two transactions adding to the same
    buckets lock them in the same order (no deadlock)."""
    if not rows:
        return
    sums = list(next(iter(rows.values())))
    columns = [*keys, *sums]
    fields = [model._meta.get_field(name) for name in columns]
    q = connection.ops.quote_name
    table = q(model._meta.db_table)
    params = []
    for key in sorted(rows):
        values = [*key, *(rows[key][name] for name in sums)]
        params += [field.get_db_prep_value(value, connection) for field, value in zip(fields, values, strict=True)]
    placeholders = ", ".join(["(" + ", ".join(["%s"] * len(columns)) + ")"] * len(rows))
    updates = ", ".join(f"{q(name)} = {table}.{q(name)} + EXCLUDED.{q(name)}" for name in sums)
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} ({', '.join(map(q, columns))}) VALUES {placeholders} "
                       f"ON CONFLICT ({', '.join(map(q, keys))}) DO UPDATE SET {updates}", params)


OUTCOME_KEYS = ("period", "start", "outcome", "diagnosis_code")
HOP_KEYS = ("hour", "hop", "le_ms")


def tests_counted(finished: list[tuple[datetime, str, str]]) -> None:
    """Count finished tests, given as (finished at, outcome, diagnosis code), in their hour's and day's buckets."""
    counts = Counter((period, bucket_start(at, period), outcome, code)
                     for at, outcome, code in finished for period in PERIODS)
    _upsert(TokenTestRollup, OUTCOME_KEYS, {key: {"n": n} for key, n in counts.items()})


def hops_counted(steps: list[tuple[datetime, str, int]]) -> None:
    """Count recorded steps, given as (started at, hop name, duration in ms), in their hour's histogram."""
    rows: dict[tuple, dict[str, int]] = {}
    for at, hop, duration_ms in steps:
        row = rows.setdefault((bucket_start(at, HOUR), hop, le_of(duration_ms)), {"n": 0, "sum_ms": 0})
        row["n"] += 1
        row["sum_ms"] += duration_ms
    _upsert(HopLatencyRollup, HOP_KEYS, rows)


# The backfill: the same buckets computed by the database from the tests and steps still stored.

def _tests_grouped(since: datetime | None):
    tests = TokenTest.objects.order_by().filter(status__in=TokenTest.FINISHED, finished_at__isnull=False)
    if since:
        tests = tests.filter(finished_at__gte=since)
    for period, trunc in ((HOUR, TruncHour), (DAY, TruncDay)):
        for row in (tests.annotate(start=trunc("finished_at", tzinfo=UTC)).values("start", "outcome", "diagnosis_code")
                    .annotate(n=Count("pk"))):
            yield (period, row["start"], row["outcome"], row["diagnosis_code"]), {"n": row["n"]}


def _steps_grouped(since: datetime | None):
    le = Case(*(When(duration_ms__lte=b, then=Value(b)) for b in LATENCY_BUCKETS_MS), default=Value(OVERFLOW_MS),
              output_field=IntegerField())
    steps = TokenTestStep.objects.order_by()
    if since:
        steps = steps.filter(started_at__gte=since)
    for row in (steps.annotate(start=TruncHour("started_at", tzinfo=UTC), le=le).values("start", "name", "le")
                .annotate(n=Count("pk"), sum_ms=Sum("duration_ms"))):
        yield (row["start"], row["name"], row["le"]), {"n": row["n"], "sum_ms": row["sum_ms"] or 0}


def _period_of(model, key: tuple) -> tuple:
    """(period, start) of a bucket key: the unit the backfill fills or leaves whole."""
    return (key[0], key[1]) if model is TokenTestRollup else (HOUR, key[0])


def _present(model, since: datetime | None) -> set[tuple]:
    if model is TokenTestRollup:
        rows = model.objects.filter(start__gte=since) if since else model.objects.all()
        return set(rows.values_list("period", "start").distinct())
    rows = model.objects.filter(hour__gte=since) if since else model.objects.all()
    return {(HOUR, hour) for hour in rows.values_list("hour", flat=True).distinct()}


def _rebuild(model, keys, grouped, *, since, replace: bool, now: datetime) -> int:
    """Fill the periods this model has no rows for, and that ended before `now` (a live worker may still add to an
    open one); or, with `replace`, recompute every period from `since` on. Returns the periods written."""
    computed: dict[tuple, dict[tuple, dict]] = {}
    for key, sums in grouped:
        computed.setdefault(_period_of(model, key), {})[key] = sums
    if replace:
        existing = model.objects.filter(**({"start__gte": since} if model is TokenTestRollup else {"hour__gte": since})
                                        if since else {})
        existing.delete()
        chosen = list(computed)
    else:
        present = _present(model, since)
        chosen = [p for p in computed if p not in present and p[1] + PERIODS[p[0]] <= now]
    for period in sorted(chosen):
        _upsert(model, keys, computed[period])
    return len(chosen)


def rollups_backfill(*, actor: Actor, now: datetime, since: datetime | None = None,
                     replace: bool = False) -> dict[str, int]:
    """Rollups from the stored tests and steps; idempotent. Without `replace`, only periods with no rollup yet (and
    already ended) are written, so it never double-counts what live maintenance counted nor loses what it counted
    for tests or steps since pruned. `replace` recomputes from `since` on (stop the workers first: a test finishing
    meanwhile could be counted twice or not at all)."""
    since = bucket_start(since, DAY) if since else None  # whole days: a period is computed whole or not at all
    with transaction.atomic():
        outcomes = _rebuild(TokenTestRollup, OUTCOME_KEYS, _tests_grouped(since), since=since, replace=replace,
                            now=now)
        hops = _rebuild(HopLatencyRollup, HOP_KEYS, _steps_grouped(since), since=since, replace=replace, now=now)
        written = {"outcome_periods": outcomes, "latency_hours": hops}
        audit_record(action="rollups.backfilled", actor=actor, target_type="rollups",
                     detail={**written, "since": since.isoformat() if since else None, "replace": replace})
    return written


# Reads: bounded by the number of periods shown, never by the number of tests.

def outcome_series(*, period: str, count: int, now: datetime) -> dict:
    """Finished tests per outcome over the last `count` periods (oldest first): labels, the outcomes seen, and per
    outcome its counts (for a chart and its data table)."""
    last = bucket_start(now, period)
    starts = [last - PERIODS[period] * i for i in range(count - 1, -1, -1)]
    rows = (TokenTestRollup.objects.order_by().filter(period=period, start__gte=starts[0])
            .values("start", "outcome").annotate(n=Sum("n")))
    by_key = {(row["start"], row["outcome"]): row["n"] for row in rows}
    seen = {outcome for _, outcome in by_key}
    outcomes = [o for o in TokenTest.Outcome if o in seen]
    return {"period": period, "starts": starts, "outcomes": outcomes,
            "counts": {o: [by_key.get((start, o), 0) for start in starts] for o in outcomes},
            "totals": [sum(by_key.get((start, o), 0) for o in outcomes) for start in starts]}


def runs_summary(*, since: datetime, period: str = HOUR) -> dict:
    """Finished tests since the start of `since`'s hour (or day): how many, how many verified, and the commonest
    diagnoses of the others."""
    rows = (TokenTestRollup.objects.order_by().filter(period=period, start__gte=bucket_start(since, period))
            .values("outcome", "diagnosis_code").annotate(n=Sum("n")))
    codes = Counter()
    total = verified = 0
    for row in rows:
        total += row["n"]
        if row["outcome"] == TokenTest.Outcome.VERIFIED:
            verified += row["n"]
        elif row["diagnosis_code"]:
            codes[row["diagnosis_code"]] += row["n"]
    return {"total": total, "verified": verified, "codes": codes.most_common()}


def quantile(counts: dict[int, int], q: float) -> float | None:
    """The q-quantile of a histogram {upper bound: count}, interpolated linearly inside its bucket as Prometheus'
    histogram_quantile does; in the +Inf bucket, the largest finite bound (all we know is "more than that")."""
    total = sum(counts.values())
    if not total:
        return None
    rank, seen, lower = q * total, 0, 0
    for le in (*LATENCY_BUCKETS_MS, OVERFLOW_MS):
        n = counts.get(le, 0)
        if n and seen + n >= rank:
            return float(lower) if le == OVERFLOW_MS else lower + (le - lower) * (rank - seen) / n
        seen += n
        lower = le
    return float(LATENCY_BUCKETS_MS[-1])


def hop_latency(*, since: datetime, order: tuple[str, ...] = ()) -> list[dict]:
    """Per hop since then: steps counted, mean, estimated p50 and p95 (ms), and whether p95 fell in the +Inf bucket;
    hops in `order` first."""
    rows = (HopLatencyRollup.objects.order_by().filter(hour__gte=bucket_start(since, HOUR))
            .values("hop", "le_ms").annotate(n=Sum("n"), sum_ms=Sum("sum_ms")))
    hops: dict[str, dict] = {}
    for row in rows:
        hop = hops.setdefault(row["hop"], {"hop": row["hop"], "counts": {}, "n": 0, "sum_ms": 0})
        hop["counts"][row["le_ms"]] = row["n"]
        hop["n"] += row["n"]
        hop["sum_ms"] += row["sum_ms"]
    for hop in hops.values():
        hop.update(p50=quantile(hop["counts"], 0.5), p95=quantile(hop["counts"], 0.95),
                   mean=hop["sum_ms"] / hop["n"],
                   p95_overflow=hop["counts"].get(OVERFLOW_MS, 0) > 0.05 * hop["n"])
    rank = {name: i for i, name in enumerate(order)}
    return sorted(hops.values(), key=lambda hop: (rank.get(hop["hop"], len(rank)), hop["hop"]))
