"""Retries are visible: the token-test page lists each attempt (start, duration, result) and, while the test waits,
when the next one is due — in its polled, aria-live region."""
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from emulator import world as demo
from exchange.models import TokenTest, TokenTestStep
from exchange.selectors import token_test_attempts
from exchange.services import token_test_execute


def _rows(html: str) -> list[list[str]]:
    table = html.split('id="attempts"')[1].split("</table>")[0]
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)]


def test_attempts_from_steps():
    t0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    steps = [TokenTestStep(attempt=1, name="imds", started_at=t0, duration_ms=40, ok=True),
             TokenTestStep(attempt=1, name="home_token", started_at=t0 + timedelta(milliseconds=50), duration_ms=30,
                           ok=False, http_status=503),
             TokenTestStep(attempt=2, name="imds", started_at=t0 + timedelta(seconds=30), duration_ms=10, ok=True),
             TokenTestStep(attempt=2, name="arm_probe", started_at=t0 + timedelta(seconds=30, milliseconds=20),
                           duration_ms=100, ok=True)]
    first, second = token_test_attempts(steps)
    assert (first.number, first.started_at, first.duration_ms, first.ok, first.failed_step.name) == (
        1, t0, 80, False, "home_token")
    assert (second.number, second.duration_ms, second.ok, second.failed_step) == (2, 120, True, None)


@pytest.mark.django_db
def test_the_page_shows_each_attempt_and_the_next_retry(portal_on_emulator, make_tenant, staff_clients):
    portal_on_emulator.control.faults(token={"fail_next": 1, "fail_status": 503, "retry_after": 37})
    tenant = make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app)
    test = TokenTest.objects.create(tenant=tenant, trigger="manual")
    token_test_execute(test_id=test.pk)
    test.refresh_from_db()
    url = reverse("exchange:tokentest-detail", kwargs={"pk": test.pk})
    client = staff_clients["viewer"]
    page = client.get(url).content.decode()
    assert 'role="status" aria-live="polite"' in page and 'id="attempts"' in page
    waiting = client.get(url, HTTP_HX_REQUEST="true")
    assert waiting.status_code == 200  # still polling
    due = test.not_before.strftime("%H:%M:%S")
    failed = test.steps.get(ok=False)
    [first, retry] = _rows(waiting.content.decode())
    assert first[:2] == ["1", failed.started_at.strftime("%H:%M:%S")] and first[3] == "home_token failed HTTP 503 transient"
    assert retry == ["2", due, "…", "waiting to retry"]
    assert f"next attempt at {due} UTC" in re.sub(r"<[^>]+>", "", waiting.content.decode())
    token_test_execute(test_id=test.pk, now=test.not_before)
    done = client.get(url, HTTP_HX_REQUEST="true")
    assert done.status_code == 286
    rows = _rows(done.content.decode())
    assert [(r[0], r[3]) for r in rows] == [("1", "home_token failed HTTP 503 transient"), ("2", "answered")]
    attempts = token_test_attempts(list(test.steps.all()))
    assert [r[2] for r in rows] == [f"{a.duration_ms} ms" for a in attempts]
    assert "next attempt" not in done.content.decode()
