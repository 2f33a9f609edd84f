"""Retention of token-test details: the steps of old tests are deleted in small batches (the tests themselves stay,
with their outcome and diagnosis: the history, the charts and the tenant's timeline read those, not the steps).

Kept whatever their age: each tenant's last RETENTION_KEEP_LAST_TESTS tests, and every test whose outcome differs from
the tenant's previous one (the first test of a tenant included): the moments access broke or came back keep their
evidence. Each batch is its own short DELETE by test id (row locks only, on an indexed column), and a run stops after
a time budget and goes on at the next one, so it never holds the table or a worker for long."""
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Exists, OuterRef
from django.utils import timezone

from exchange.models import TokenTest, TokenTestStep
from portal.services import Actor, audit_record

RUN_BUDGET_SECONDS = 90.0  # under the tasks' soft time limit; the rest waits for the next run


def _kept_test_ids(keep_last: int) -> set[int]:
    """Each tenant's newest `keep_last` finished tests and every finished test whose outcome differs from the tenant's
    previous one (window functions: one pass over the tests, on PostgreSQL and SQLite alike)."""
    table = connection.ops.quote_name(TokenTest._meta.db_table)
    sql = f"""
        SELECT id FROM (
            SELECT id, outcome,
                   ROW_NUMBER() OVER (PARTITION BY tenant_id ORDER BY queued_at DESC, id DESC) AS newest,
                   LAG(outcome) OVER (PARTITION BY tenant_id ORDER BY queued_at, id) AS previous
            FROM {table} WHERE status IN (%s, %s)
        ) ranked
        WHERE newest <= %s OR previous IS NULL OR previous <> outcome"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [*TokenTest.FINISHED, keep_last])
        return {row[0] for row in cursor.fetchall()}


def token_test_steps_prune(*, now=None, days: int | None = None, keep_last: int | None = None,
                           batch: int | None = None, budget_seconds: float = RUN_BUDGET_SECONDS) -> dict:
    """Delete the steps of finished tests queued more than `days` ago, except the kept ones (above). Returns the counts
    (and whether it got through them all); audited as a system action when anything was deleted."""
    now = now or timezone.now()
    days = settings.RETENTION_STEP_DAYS if days is None else days
    keep_last = settings.RETENTION_KEEP_LAST_TESTS if keep_last is None else keep_last
    batch = batch or settings.RETENTION_BATCH_TESTS
    cutoff = now - timedelta(days=days)
    kept = _kept_test_ids(keep_last)
    old = (TokenTest.objects.filter(queued_at__lt=cutoff, status__in=TokenTest.FINISHED)
           .filter(Exists(TokenTestStep.objects.filter(test=OuterRef("pk")))).order_by("pk"))
    deadline = time.monotonic() + budget_seconds
    tests = steps = 0
    last, complete = 0, False
    while time.monotonic() < deadline:
        ids = list(old.filter(pk__gt=last).values_list("pk", flat=True)[:batch])
        if not ids:
            complete = True
            break
        last = ids[-1]
        prune = [pk for pk in ids if pk not in kept]
        if prune:
            deleted, _ = TokenTestStep.objects.filter(test_id__in=prune).delete()
            tests, steps = tests + len(prune), steps + deleted
    result = {"tests": tests, "steps": steps, "cutoff": cutoff.isoformat(timespec="seconds"), "days": days,
              "keep_last": keep_last, "complete": complete}
    if steps:
        audit_record(action="retention.steps_pruned", actor=Actor.system("retention"), target_type="tokentest",
                     detail=result)
    return result
