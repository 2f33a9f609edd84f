"""The dashboard: tiles that agree with the tenants' statuses and lead to the filtered list, the tenants needing
attention, success by distinct tenant, credential findings, outcomes by hour and day with their data tables, latency
per hop from the rollups, links on every tenant and audit target — and reads that do not grow with the tests."""
import json
import re
from collections import Counter

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from console.selectors import tenants_url
from emulator import world as demo
from exchange.models import TokenTest
from exchange.services import token_test_finish
from onboarding.models import CustomerTenant
from onboarding.services import consent_link_issue
from portal.services import Actor
from tests.exchange.conftest import run_test

DASHBOARD = "/dashboard/"
NOW = timezone.now


def _finished(tenant, code):
    test = TokenTest.objects.create(tenant=tenant, trigger="manual", status="running", started_at=NOW())
    token_test_finish(test=test, code=code)
    return test


@pytest.fixture
def every_status(make_tenant):
    """One tenant in each status (two failing), keyed by status."""
    S = CustomerTenant.Status
    return {
        S.DRAFT: [make_tenant(consent_received_at=None)],
        S.INVITED: [make_tenant(consent_received_at=None, invited_at=NOW())],
        S.CONSENT_RECEIVED: [make_tenant()],
        S.VERIFIED: [make_tenant(last_outcome="verified")],
        S.NO_ROLE: [make_tenant(last_outcome="no_role", consecutive_failures=2, failing_since=NOW())],
        S.FAILING: [make_tenant(last_outcome="not_consented", consecutive_failures=1, failing_since=NOW()),
                    make_tenant(last_outcome="transient", consecutive_failures=4, failing_since=NOW())],
        S.DECLINED: [make_tenant(consent_received_at=None, declined_at=NOW())],
        S.OFFBOARDED: [make_tenant(offboarded_at=NOW(), last_outcome="verified")],
    }


def test_roles_that_may_see_it(staff_clients):
    assert staff_clients[None].get(DASHBOARD).status_code == 302
    assert staff_clients["auditor"].get(DASHBOARD).status_code == 403
    assert staff_clients["viewer"].get(DASHBOARD).status_code == 200


@pytest.mark.django_db
def test_empty_dashboard_says_what_to_do_first(staff_clients):
    page = staff_clients["viewer"].get(DASHBOARD).content.decode()
    assert "Nothing to show yet" in page and reverse("exchange:identities") in page


def test_tiles_agree_with_the_tenant_statuses_and_link_to_the_filtered_list(staff_clients, every_status):
    response = staff_clients["viewer"].get(DASHBOARD)
    tiles = {tile["status"]: tile["n"] for tile in response.context["tiles"]}
    assert tiles == dict(Counter(t.status for t in CustomerTenant.objects.all()))
    assert tiles == {status: len(tenants) for status, tenants in every_status.items()}
    for status in CustomerTenant.Status:
        assert tiles[status] == CustomerTenant.objects.with_status_in(status).count()
    page = response.content.decode()
    tile = re.compile(r'<a href="([^"]+)" class="tile" data-status="(\w+)"><span class="figure">(\d+)</span>')
    links = {status: (href, int(n)) for href, status, n in tile.findall(page)}
    assert links == {status: (f"/tenants/?status={status}", n) for status, n in tiles.items()}
    assert tenants_url(status="failing") == "/tenants/?status=failing"


def test_needing_attention_is_the_tiles_failing_no_role_and_declined(staff_clients, every_status):
    response = staff_clients["viewer"].get(DASHBOARD)
    context, page = response.context, response.content.decode()
    attention = every_status["failing"] + every_status["no_role"] + every_status["declined"]
    assert context["attention_total"] == len(attention) == 4
    assert {t.pk for t in context["attention"]} == {t.pk for t in attention}
    assert "Tenants needing attention (4)" in page
    for tenant in attention:
        assert f'<a href="{reverse("onboarding:tenant-detail", args=[tenant.pk])}">{tenant}</a>' in page
        assert reverse("onboarding:customer-detail", args=[tenant.customer_id]) in page
    shown_failing = page.split('id="attention-heading"')[1].split("</table>")[0].count('badge bad">Failing<')
    failing_tile = next(t["n"] for t in context["tiles"] if t["status"] == "failing")
    assert shown_failing == failing_tile == 2


@pytest.mark.django_db
def test_no_attention_says_so(staff_clients, make_tenant):
    make_tenant(last_outcome="verified")
    page = staff_clients["viewer"].get(DASHBOARD).content.decode()
    assert "Tenants needing attention (0)" in page and "No tenant needs attention" in page


@pytest.mark.django_db
def test_success_rate_counts_distinct_tenants_not_runs(staff_clients, make_tenant):
    verified, failing = make_tenant(), make_tenant()
    _finished(verified, "verified")
    for _ in range(3):
        _finished(failing, "AADSTS700016")
    context = staff_clients["viewer"].get(DASHBOARD).context
    assert context["success"] == {"tested": 2, "verified": 1, "rate": 50}
    assert (context["runs"]["total"], context["runs"]["verified"], context["runs"]["rate"]) == (4, 1, 25)
    assert context["runs"]["codes"] == [("AADSTS700016", 3)]


@pytest.mark.django_db
def test_credential_findings_are_shown_with_their_severity(staff_clients, make_home_app, make_tenant):
    make_home_app(graph_error={"code": "AADSTS70021", "message": "no FIC"})
    make_tenant()
    page = staff_clients["viewer"].get(DASHBOARD).content.decode()
    section = page.split('id="findings-heading"')[1].split("</section>")[0]
    assert 'class="badge bad">Error<' in section
    assert "every exchange will fail with AADSTS70021" in section
    assert f'href="{reverse("exchange:identities")}"' in section


@pytest.mark.django_db
def test_audit_targets_and_their_tenants_are_links(staff_clients, make_tenant):
    tenant = make_tenant()
    test = _finished(tenant, "verified")
    link, _ = consent_link_issue(tenant=tenant, actor=Actor.system("test"))
    page = staff_clients["viewer"].get(DASHBOARD).content.decode()
    activity = page.split('id="activity-heading"')[1]
    tenant_page = reverse("onboarding:tenant-detail", args=[tenant.pk])
    assert f'<a href="{reverse("exchange:tokentest-detail", args=[test.pk])}">tokentest {test.pk}</a>' in activity
    assert f'<a href="{tenant_page}">consent_link {link.pk}</a>' in activity  # shown on its tenant's page
    assert activity.count(f'<a href="{tenant_page}">{tenant}</a>') == 2


def _headings(page: str) -> list[int]:
    return [int(level) for level in re.findall(r"<h([1-6])[ >]", page)]


def test_through_the_chain_charts_by_hour_and_day_with_data_tables_and_hop_latency(
        staff_clients, portal_on_emulator, make_tenant, django_capture_on_commit_callbacks):
    for tenant_id in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND):
        run_test(make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app), django_capture_on_commit_callbacks)
    response = staff_clients["viewer"].get(DASHBOARD)
    page = response.content.decode()
    levels = _headings(page)
    assert levels.count(1) == 1 and levels[0] == 1
    assert all(b - a <= 1 for a, b in zip(levels, levels[1:], strict=False))
    for key, periods in (("hours", 48), ("days", 30)):
        data = json.loads(page.split(f'id="chart-{key}-data" type="application/json">')[1].split("</script>")[0])
        assert len(data["labels"]) == periods
        assert {d["outcome"]: sum(d["data"]) for d in data["datasets"]} == {
            "verified": 1, "no_role": 1, "not_consented": 1}
        assert f'data-chart-source="chart-{key}-data"' in page
    tables = re.findall(r"<details>\s*<summary>Data table: token tests finished by (hour|day)</summary>(.*?)</details>",
                        page, re.S)
    assert [period for period, _ in tables] == ["hour", "day"]
    for _, table in tables:
        assert "<th scope=\"col\">Access verified</th>" in table and re.search(r"<td>1</td>\s*<td>1</td>\s*<td>1</td>"
                                                                              r"\s*<td>3</td>", table)
    latency = {hop["hop"]: hop for hop in response.context["latency"]}
    assert list(latency)[:2] == ["imds", "home_token"] and {"tenant_token", "arm_probe"} <= set(latency)
    assert latency["tenant_token"]["n"] == 3 and 0 < latency["tenant_token"]["p50"] <= latency["tenant_token"]["p95"]
    assert "Customer tenant token <code>tenant_token</code>" in page


@pytest.mark.django_db
def test_reads_do_not_grow_with_the_tests_and_never_scan_tests_or_steps(staff_clients, make_tenant):
    client = staff_clients["viewer"]
    tenants = [make_tenant() for _ in range(3)]
    client.get(DASHBOARD)  # the session, the user's groups: warm

    def queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(DASHBOARD).status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    for tenant in tenants:
        _finished(tenant, "verified")
    few = queries()
    for tenant in tenants * 10:
        _finished(tenant, "AADSTS700016")
    many = queries()
    assert len(few) == len(many) <= 20
    assert not [sql for sql in many if "exchange_tokenteststep" in sql]
    on_tests = [sql for sql in many if 'FROM "exchange_tokentest"' in sql]
    assert len(on_tests) == 1 and '"exchange_tokentest"."status" IN' in on_tests[0]
