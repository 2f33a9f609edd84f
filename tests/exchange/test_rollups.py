"""Rollups of token tests: kept as tests finish through the real chain, rebuilt identically by the backfill (which
never double-counts nor forgets what pruned steps counted), safe under concurrent writers, and p50/p95 estimated from
the histograms."""
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from emulator import world as demo
from exchange import rollups
from exchange.models import HopLatencyRollup, Sweep, TokenTestRollup, TokenTestStep
from onboarding.services import sweep_all_start
from portal.models import AuditEvent
from portal.services import Actor
from tests.exchange.conftest import run_test

ACTOR = Actor.system("test")


def outcome_rows() -> dict:
    return {(r.period, r.start, r.outcome, r.diagnosis_code): r.n for r in TokenTestRollup.objects.all()}


def hop_rows() -> dict:
    return {(r.hour, r.hop, r.le_ms): (r.n, r.sum_ms) for r in HopLatencyRollup.objects.all()}


@pytest.fixture
def three_runs(run_for):
    """Fabrikam verified, Tailspin consented without a role, Northwind not consented: through the chain."""
    return [run_for(tenant) for tenant in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)]


def test_finished_tests_are_counted_per_hour_and_day_with_their_hops(three_runs):
    hour = rollups.bucket_start(three_runs[0].finished_at, rollups.HOUR)
    expected = {(period, rollups.bucket_start(hour, period), outcome, code): 1
                for period in ("hour", "day") for outcome, code in
                (("verified", "verified"), ("no_role", "no_role"), ("not_consented", "AADSTS700016"))}
    assert outcome_rows() == expected
    steps = TokenTestStep.objects.all()
    by_hop = {}
    for step in steps:
        n, total = by_hop.get(step.name, (0, 0))
        by_hop[step.name] = (n + 1, total + step.duration_ms)
    counted = {}
    for (_, hop, _), (n, sum_ms) in hop_rows().items():
        counted[hop] = (counted.get(hop, (0, 0))[0] + n, counted.get(hop, (0, 0))[1] + sum_ms)
    assert counted == by_hop and set(by_hop) >= {"imds", "tenant_token", "arm_probe"}
    assert {(rollups.bucket_start(s.started_at, "hour"), s.name, rollups.le_of(s.duration_ms)) for s in steps} \
        == set(hop_rows())


def test_sweeps_count_each_test_once_and_every_attempts_hops(portal_on_emulator, make_tenant,
                                                             django_capture_on_commit_callbacks):
    fabrikam, *_ = [make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app)
                    for tenant_id in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)]
    for _ in range(2):  # batches of tests finished together
        with django_capture_on_commit_callbacks(execute=True):
            sweep_all_start(trigger=Sweep.Trigger.MANUAL, actor=ACTOR)
    portal_on_emulator.control.faults(token={"fail_next": 2, "fail_status": 503, "retry_after": 0})
    assert run_test(fabrikam, django_capture_on_commit_callbacks).attempts == 3  # two 503s retried
    days = {(r.outcome, r.diagnosis_code): r.n for r in TokenTestRollup.objects.filter(period="day")}
    assert days == {("verified", "verified"): 3, ("no_role", "no_role"): 2, ("not_consented", "AADSTS700016"): 2}
    assert sum(r.n for r in HopLatencyRollup.objects.all()) == TokenTestStep.objects.count()  # failed attempts too


def test_backfill_rebuilds_what_live_maintenance_counted_and_is_idempotent(three_runs):
    live_outcomes, live_hops = outcome_rows(), hop_rows()
    TokenTestRollup.objects.all().delete()
    HopLatencyRollup.objects.all().delete()
    later = timezone.now() + timedelta(days=2)  # every period has ended: the fill mode may write them
    written = rollups.rollups_backfill(actor=ACTOR, now=later)
    assert written == {"outcome_periods": 2, "latency_hours": 1}
    assert (outcome_rows(), hop_rows()) == (live_outcomes, live_hops)
    assert rollups.rollups_backfill(actor=ACTOR, now=later) == {"outcome_periods": 0, "latency_hours": 0}
    call_command("rollups_backfill", "--replace")
    assert (outcome_rows(), hop_rows()) == (live_outcomes, live_hops)
    assert AuditEvent.objects.filter(action="rollups.backfilled").count() == 3


def test_backfill_leaves_open_and_counted_periods_alone(three_runs, run_for):
    live_outcomes = outcome_rows()
    assert rollups.rollups_backfill(actor=ACTOR, now=timezone.now()) == {"outcome_periods": 0, "latency_hours": 0}
    TokenTestRollup.objects.all().delete()
    # The current hour and day are still open: a worker may be adding to them, so the fill mode waits.
    assert rollups.rollups_backfill(actor=ACTOR, now=timezone.now())["outcome_periods"] == 0
    assert rollups.rollups_backfill(actor=ACTOR, now=timezone.now() + timedelta(days=2))["outcome_periods"] == 2
    assert outcome_rows() == live_outcomes


def test_latency_survives_pruned_steps(three_runs):
    live_hops = hop_rows()
    TokenTestStep.objects.all().delete()  # what retention does to old steps
    rollups.rollups_backfill(actor=ACTOR, now=timezone.now() + timedelta(days=2))
    assert hop_rows() == live_hops


def test_backfill_command_refuses_a_bad_date(db):
    with pytest.raises(CommandError, match="not an ISO date"):
        call_command("rollups_backfill", "--since", "last tuesday")


def test_quantiles_from_a_histogram_of_known_durations(db):
    hour = timezone.now()
    rollups.hops_counted([(hour, "tenant_token", ms) for ms in range(1, 101)])  # 1..100 ms, one each
    rollups.hops_counted([(hour, "arm_probe", 40_000)] * 10)  # all beyond the last finite bound
    hops = {h["hop"]: h for h in rollups.hop_latency(since=hour - timedelta(hours=1), order=("tenant_token",))}
    token = hops["tenant_token"]
    assert token["n"] == 100 and token["mean"] == pytest.approx(50.5)
    assert token["p50"] == pytest.approx(50) and token["p95"] == pytest.approx(95)
    assert not token["p95_overflow"]
    assert hops["arm_probe"]["p95"] == 30000 and hops["arm_probe"]["p95_overflow"]
    assert rollups.quantile({}, 0.5) is None
    assert rollups.quantile({10: 4}, 0.5) == pytest.approx(5)  # half-way up the first bucket, from 0


def test_outcome_series_has_every_period_and_only_outcomes_seen(db):
    now = timezone.now()
    rollups.tests_counted([(now, "verified", "verified")] * 3 + [(now - timedelta(hours=5), "transient", "5xx")])
    series = rollups.outcome_series(period=rollups.HOUR, count=48, now=now)
    assert len(series["starts"]) == 48 and series["starts"][-1] == rollups.bucket_start(now, rollups.HOUR)
    assert series["outcomes"] == ["verified", "transient"]
    assert series["counts"]["verified"][-1] == 3 and series["counts"]["transient"][-6] == 1
    assert sum(series["totals"]) == 4


def _count_together(threads: int, times: int, at) -> None:
    barrier = threading.Barrier(threads)

    def work():
        try:
            barrier.wait()
            for _ in range(times):
                with transaction.atomic():
                    rollups.tests_counted([(at, "verified", "verified")])
                    rollups.hops_counted([(at, "imds", 7)])
        finally:
            connection.close()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_add_to_the_same_new_bucket_without_losing_a_count():
    at = timezone.now()
    _count_together(threads=4, times=25, at=at)
    assert {r.period: r.n for r in TokenTestRollup.objects.all()} == {"hour": 100, "day": 100}
    assert [(r.n, r.sum_ms) for r in HopLatencyRollup.objects.all()] == [(100, 700)]
