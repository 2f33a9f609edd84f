"""Riding out outages (issue 11, finding 7): a circuit breaker per endpoint and cloud opens when many tenants fail
transiently there at once; the sweep then holds (no attempt spent), one test probes, an answer closes it; an outage
that outlasts SWEEP_OUTAGE_MAX_MINUTES finishes the held tests naming the outage, not blaming the tenants."""
from datetime import timedelta

import pytest
from django.utils import timezone

from emulator import world as demo
from exchange import services
from exchange.breaker import breaker_observe, outages_open
from exchange.diagnosis import diagnose
from exchange.models import Sweep, TokenTest
from exchange.selectors import outages_current


@pytest.fixture
def sweep_batch(portal_on_emulator, make_tenant, settings):
    settings.BREAKER_MIN_FAILURES = 2
    sweep = Sweep.objects.create(trigger="manual", total=3)
    tenants = [make_tenant(tenant_id=t, home_app=portal_on_emulator.app)
               for t in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND)]
    return sweep, [TokenTest.objects.create(tenant=t, trigger="sweep", sweep=sweep).pk for t in tenants]


def _token_endpoint_down(portal_on_emulator):
    portal_on_emulator.control.faults(token={"fail_next": 10_000, "fail_status": 503, "retry_after": 0})


def test_a_few_transient_failures_among_answers_do_not_open_it(settings):
    settings.BREAKER_MIN_FAILURES = 2
    now = timezone.now()
    assert breaker_observe(counts={("global", "tenant_token"): [8, 2]}, now=now) == {}  # 20 %: tenants' retries
    opened = breaker_observe(counts={("global", "tenant_token"): [0, 10]}, now=now)
    assert list(opened) == [("global", "tenant_token")] and opened[("global", "tenant_token")].since == now
    assert breaker_observe(counts={("global", "tenant_token"): [1, 0]}, now=now) == {}  # it answered: closed


def test_an_endpoint_failing_for_many_tenants_opens_the_breaker_and_holds_the_sweep(portal_on_emulator, sweep_batch):
    sweep, ids = sweep_batch
    _token_endpoint_down(portal_on_emulator)
    executions, _ = services.token_tests_execute(test_ids=ids)
    assert list(outages_open()) == [("global", "home_token")]
    tests = TokenTest.objects.filter(pk__in=ids)
    # Held, not retried: no attempt spent, due again after a probe period.
    assert set(tests.values_list("status", "attempts", "outcome")) == {("queued", 0, "")}
    assert all(15 <= e.retry_in <= 22.5 for e in executions)
    assert {t.error["held"]["endpoint"] for t in tests} == {"home_token"}
    [banner] = outages_current()
    assert (banner["endpoint"], banner["cloud"], banner["tenants_affected"]) == ("home_token", "global", 3)


def test_an_arm_outage_opens_the_breaker_and_holds_the_sweep(portal_on_emulator, sweep_batch):
    """One vocabulary: the breaker counts the endpoint a chain's failure names (faults.ENDPOINTS), so an outage of
    ARM (or discovery), not only of the token endpoint, holds the sweep."""
    sweep, ids = sweep_batch
    portal_on_emulator.control.faults(arm={"fail_next": 10_000, "fail_status": 503, "retry_after": 0})
    services.token_tests_execute(test_ids=ids)
    assert list(outages_open()) == [("global", "arm")]
    tests = TokenTest.objects.filter(pk__in=ids)
    # Fabrikam and Tailspin reached ARM: held, no attempt spent. Northwind never consented: its verdict stands.
    assert {str(t): s for t, s in tests.values_list("tenant__tenant_id", "status")} == {
        demo.FABRIKAM: "queued", demo.TAILSPIN: "queued", demo.NORTHWIND: "failed"}
    held = tests.filter(status="queued")
    assert set(held.values_list("attempts", "outcome")) == {(0, "")}
    assert {t.error["held"]["endpoint"] for t in held} == {"arm"}
    [banner] = outages_current()
    assert (banner["endpoint"], banner["cloud"], banner["tenants_affected"]) == ("arm", "global", 2)
    portal_on_emulator.control.faults(arm={"fail_next": 0})  # ARM is back: the probe's answer closes the breaker
    due = max(held.values_list("not_before", flat=True))
    services.token_tests_execute(test_ids=ids, now=due)
    assert outages_open() == {}
    assert sorted(tests.values_list("status", flat=True)) == ["failed", "queued", "succeeded"]


def test_while_open_one_test_probes_and_its_success_closes_the_breaker(portal_on_emulator, sweep_batch):
    sweep, ids = sweep_batch
    _token_endpoint_down(portal_on_emulator)
    services.token_tests_execute(test_ids=ids)
    portal_on_emulator.control.faults(token={"fail_next": 0})  # the endpoint is back
    portal_on_emulator.control.reset_requests()
    due = max(TokenTest.objects.filter(pk__in=ids).values_list("not_before", flat=True))
    services.token_tests_execute(test_ids=ids, now=due)
    statuses = sorted(TokenTest.objects.filter(pk__in=ids).values_list("status", "attempts"))
    assert statuses == [("queued", 0), ("queued", 0), ("succeeded", 1)]  # the probe ran, the others were held
    assert portal_on_emulator.control.requests()["by_endpoint"]["token"] == 2  # the probe's home and customer tokens
    assert outages_open() == {} and outages_current() == []
    later = due + timedelta(seconds=30)
    services.token_tests_execute(test_ids=ids, now=later)
    sweep.refresh_from_db()
    assert (sweep.done, sweep.succeeded, sweep.failed) == (3, 1, 2) and sweep.finished_at is not None


def test_an_outage_longer_than_a_sweep_waits_is_named_as_the_cause(portal_on_emulator, sweep_batch, settings):
    sweep, ids = sweep_batch
    _token_endpoint_down(portal_on_emulator)
    services.token_tests_execute(test_ids=ids)
    since = outages_open()[("global", "home_token")].since
    later = since + timedelta(minutes=settings.SWEEP_OUTAGE_MAX_MINUTES + 1)
    services.token_tests_execute(test_ids=ids, now=later)  # still down: the probe fails too
    tests = list(TokenTest.objects.filter(pk__in=ids).select_related("tenant"))
    assert {(t.status, t.outcome, t.diagnosis_code) for t in tests} == {("failed", "transient", "outage")}
    assert all(t.attempts <= 1 for t in tests)  # the outage spent no tenant's attempts
    diagnosis = diagnose(tests[0])
    assert "home_token" in diagnosis.title and f"{settings.SWEEP_OUTAGE_MAX_MINUTES + 1:.1f} minutes" in diagnosis.cause
    assert {(t.tenant.last_outcome, t.tenant.consecutive_failures) for t in tests} == {("", 0)}  # not blamed
    sweep.refresh_from_db()
    assert (sweep.done, sweep.failed) == (3, 3) and sweep.finished_at is not None


def test_a_throttled_tenant_is_retried_past_its_attempts_a_failing_one_is_not(portal_on_emulator, make_tenant,
                                                                             settings,
                                                                             django_capture_on_commit_callbacks):
    """429 means "come back later": under heavy throttling a healthy tenant must not run out of attempts."""
    from exchange.services import token_test_start
    from portal.services import Actor

    settings.TOKEN_TEST_MAX_ATTEMPTS = 2
    portal_on_emulator.control.faults(arm={"fail_next": 3, "fail_status": 429, "retry_after": 0})
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    with django_capture_on_commit_callbacks(execute=True):
        throttled = token_test_start(tenant=tenant, trigger="manual", actor=Actor.system("test"))
    throttled.refresh_from_db()
    assert (throttled.status, throttled.outcome, throttled.attempts) == ("succeeded", "verified", 4)
    portal_on_emulator.control.faults(arm={"fail_next": 3, "fail_status": 503, "retry_after": 0})
    with django_capture_on_commit_callbacks(execute=True):
        failing = token_test_start(tenant=tenant, trigger="manual", actor=Actor.system("test"))
    failing.refresh_from_db()
    assert (failing.status, failing.outcome, failing.attempts) == ("failed", "transient", 2)


def test_a_tenant_failing_where_many_fail_is_retried_past_its_attempts(portal_on_emulator, make_tenant, settings,
                                                                       django_capture_on_commit_callbacks):
    """20 % 503 on an endpoint fails every tenant now and then: out of attempts on an endpoint failing for many
    (BREAKER_MIN_FAILURES within the window, below the ratio that opens the breaker), a tenant is retried still."""
    from exchange.breaker import breaker_observe
    from exchange.services import token_test_start
    from portal.services import Actor

    settings.TOKEN_TEST_MAX_ATTEMPTS = 2
    settings.BREAKER_MIN_FAILURES = 3
    breaker_observe(counts={("global", "arm"): [20, 3]})  # other tenants' failures on ARM this minute
    portal_on_emulator.control.faults(arm={"fail_next": 3, "fail_status": 503, "retry_after": 0})
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    with django_capture_on_commit_callbacks(execute=True):
        test = token_test_start(tenant=tenant, trigger="manual", actor=Actor.system("test"))
    test.refresh_from_db()
    assert (test.status, test.outcome, test.attempts) == ("succeeded", "verified", 4)
    assert outages_open() == {}  # degraded, not down: the breaker stayed closed
