"""Retention of token-test steps: old tests lose their steps in batches, except each tenant's last N tests and every
test where the tenant's outcome changed; the tests themselves stay; the run is audited with its counts."""
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from exchange.models import TokenTest, TokenTestStep
from exchange.services import token_test_steps_prune
from exchange.tasks import token_test_steps_prune as prune_task
from portal.models import AuditEvent

OUTCOMES = ["verified"] * 5 + ["no_role"] * 3 + ["verified"] * 12  # changes at #0, #5 and #8


def _history(tenant, outcomes, *, days_ago):
    now, tests = timezone.now(), []
    for i, outcome in enumerate(outcomes):
        at = now - timedelta(days=days_ago, minutes=len(outcomes) - i)
        test = TokenTest.objects.create(tenant=tenant, trigger="sweep", status="succeeded", outcome=outcome,
                                        queued_at=at, started_at=at, finished_at=at)
        TokenTestStep.objects.bulk_create([TokenTestStep(test=test, name=n, started_at=at, ok=True)
                                           for n in ("imds", "customer_token", "arm")])
        tests.append(test)
    return tests


def _with_steps(tests):
    return [i for i, t in enumerate(tests) if TokenTestStep.objects.filter(test=t).exists()]


@pytest.mark.django_db
def test_keeps_the_last_tests_and_the_outcome_changes_and_prunes_the_rest(make_tenant):
    old = _history(make_tenant(), OUTCOMES, days_ago=40)
    recent = _history(other := make_tenant(), ["verified"] * 3, days_ago=1)
    result = token_test_steps_prune(days=30, keep_last=4, batch=3)
    assert _with_steps(old) == [0, 5, 8, 16, 17, 18, 19]  # first outcome, each change, the last four
    assert _with_steps(recent) == [0, 1, 2] and other.token_tests.count() == 3
    assert TokenTest.objects.count() == 23  # the tests stay, with their outcomes
    assert result["tests"] == 13 and result["steps"] == 39 and result["complete"]
    event = AuditEvent.objects.get(action="retention.steps_pruned")
    assert event.actor_kind == "system" and event.detail["steps"] == 39 and event.detail["keep_last"] == 4
    assert token_test_steps_prune(days=30, keep_last=4)["steps"] == 0  # nothing more: not audited again
    assert AuditEvent.objects.filter(action="retention.steps_pruned").count() == 1


@pytest.mark.django_db
def test_the_scheduled_task_uses_the_settings(make_tenant, settings):
    settings.RETENTION_STEP_DAYS, settings.RETENTION_KEEP_LAST_TESTS = 10, 2
    tests = _history(make_tenant(), ["verified"] * 6, days_ago=20)
    prune_task.delay()
    assert _with_steps(tests) == [0, 4, 5]


def test_beat_runs_it():
    entry = settings.CELERY_BEAT_SCHEDULE["token-test-steps-prune"]
    assert entry == {"task": "exchange.token_test_steps_prune", "schedule": settings.RETENTION_INTERVAL_MINUTES * 60}


def test_a_pruned_test_says_so_on_its_page(make_tenant, staff_clients):
    tests = _history(make_tenant(), ["verified"] * 3, days_ago=40)
    TokenTest.objects.filter(pk__in=[t.pk for t in tests]).update(attempts=1)
    token_test_steps_prune(days=30, keep_last=1)
    pruned, kept = tests[1], tests[2]
    page = staff_clients["viewer"].get(reverse("exchange:tokentest-detail", args=[pruned.pk])).content.decode()
    assert 'id="steps-pruned"' in page and f"pruned after {settings.RETENTION_STEP_DAYS} days" in page
    assert "Access verified" in page  # its outcome is kept
    page = staff_clients["viewer"].get(reverse("exchange:tokentest-detail", args=[kept.pk])).content.decode()
    assert 'id="steps-pruned"' not in page and "<h2>Steps</h2>" in page
