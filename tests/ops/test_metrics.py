"""/metrics: scraped and parsed with Prometheus' own parser; labels bounded; access by address or bearer token; the
Grafana dashboard parses and names only metrics the endpoint exports."""
import json
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from exchange.breaker import ENDPOINTS
from exchange.diagnosis import CATALOGUE
from exchange.models import Sweep, TokenTest, TokenTestStep
from onboarding.models import CustomerTenant
from ops.models import Alert, AlertKind, Delivery

ROOT = Path(__file__).resolve().parents[2]


def _scrape(client=None, **extra) -> dict:
    response = (client or Client()).get("/metrics", **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    return {f.name: f for f in text_string_to_metric_families(response.content.decode())}


@pytest.fixture
def data(make_tenant):
    now = timezone.now()
    tenants = [make_tenant(last_outcome=o) for o in ("verified", "verified", "no_role", "not_consented", "")]
    make_tenant(offboarded_at=now)
    make_tenant(consent_received_at=None)
    make_tenant(consent_received_at=None, invited_at=now)
    make_tenant(consent_received_at=now - timedelta(days=1), declined_at=now)
    codes = ["verified", "verified", "AADSTS700016", "AADSTS99999999", "transient", "made-up"]
    for i, code in enumerate(codes):
        test = TokenTest.objects.create(tenant=tenants[i % 4], trigger="sweep", status="failed", finished_at=now,
                                        outcome="verified" if code == "verified" else "error" if i > 2 else "x-odd",
                                        diagnosis_code=code)
        for name, ms in (("imds", 30), ("tenant_token", 400 + i * 1000), (f"unknown-hop-{i}", 5)):
            TokenTestStep.objects.create(test=test, name=name, started_at=now, duration_ms=ms, ok=True)
    old = TokenTest.objects.create(tenant=tenants[0], trigger="sweep", status="failed", outcome="error",
                                   diagnosis_code="AADSTS90002", finished_at=now - timedelta(days=1))
    TokenTestStep.objects.create(test=old, name="imds", started_at=now - timedelta(days=1), duration_ms=99999)
    TokenTest.objects.create(tenant=tenants[1], trigger="manual", queued_at=now - timedelta(seconds=90))
    TokenTest.objects.create(tenant=tenants[2], trigger="manual", status="running")
    Sweep.objects.create(trigger="schedule", started_at=now - timedelta(minutes=10), finished_at=now, total=4, done=4)
    Sweep.objects.create(trigger="schedule", total=10, done=3)
    alert = Alert.objects.create(kind="outage", dedupe_key="a", title="t", text="t")
    Delivery.objects.create(alert=alert, channel=None, channel_kind="webhook", status="failed", attempts=6)
    Delivery.objects.create(alert=alert, channel=None, channel_kind="email", status="sent", attempts=1)
    return tenants


def test_scrape_parses_with_bounded_labels(data):
    families = _scrape()
    tenants = {s.labels["state"]: s.value for s in families["portal_tenants"].samples}
    assert tenants == {"draft": 1, "invited": 1, "consent_received": 1, "verified": 2, "no_role": 1, "failing": 1,
                       "declined": 1, "offboarded": 1}
    assert tenants == Counter(t.status for t in CustomerTenant.objects.all())  # as the model derives it
    tests = {(s.labels["outcome"], s.labels["diagnosis"]): s.value for s in families["portal_token_tests_recent"].samples}
    assert tests[("verified", "verified")] == 2 and tests[("other", "AADSTS700016")] == 1
    assert tests[("error", "other")] == 2  # unknown codes are folded, never a label of their own
    assert sum(tests.values()) == 6  # yesterday's test is outside the window
    assert {d for _, d in tests} <= set(CATALOGUE) | {"outage", "none", "other"}
    steps = families["portal_token_test_step_duration_seconds"].samples
    assert {s.labels["step"] for s in steps} <= set(ENDPOINTS) | {"chain", "other"}
    buckets = {s.labels["le"]: s.value for s in steps if s.name.endswith("_bucket") and s.labels["step"] == "tenant_token"}
    assert (buckets["0.5"], buckets["2.5"], buckets["5.0"], buckets["+Inf"]) == (1, 3, 5, 6)  # 0.4 s, 1.4 s … 5.4 s
    count = {s.labels["step"]: s.value for s in steps if s.name.endswith("_count")}
    assert count == {"imds": 6, "tenant_token": 6, "other": 6}
    assert families["portal_token_tests_queued"].samples[0].value == 1
    assert families["portal_token_tests_running"].samples[0].value == 1
    assert 85 <= families["portal_token_test_oldest_queued_age_seconds"].samples[0].value < 3600
    assert families["portal_sweep_progress_ratio"].samples[0].value == pytest.approx(0.3)
    assert families["portal_sweep_running"].samples[0].value == 1
    assert families["portal_sweep_last_duration_seconds"].samples[0].value == pytest.approx(600, abs=1)
    deliveries = {(s.labels["channel"], s.labels["status"]): s.value for s in families["portal_alert_deliveries"].samples}
    assert deliveries[("webhook", "failed")] == 1 and deliveries[("email", "sent")] == 1 and len(deliveries) == 8
    alerts = {s.labels["kind"]: s.value for s in families["portal_alerts"].samples}
    assert alerts["outage"] == 1 and set(alerts) == set(AlertKind.values)
    text = Client().get("/metrics").content.decode()
    assert not any(str(t.tenant_id) in text for t in data)  # no tenant id anywhere


def test_access_by_address_or_bearer_token(db, settings):
    settings.METRICS_ALLOWED_CIDRS = ["10.1.0.0/16"]
    assert Client().get("/metrics").status_code == 403
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200
    settings.METRICS_BEARER_TOKEN = "scrape-token-0123456789"
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    _scrape(HTTP_AUTHORIZATION="Bearer scrape-token-0123456789")


def test_scraped_over_plain_http_by_address_with_any_host(db, settings):
    """Prometheus scrapes a web process's own address from inside the network: no HTTPS redirect, no host check."""
    settings.SECURE_SSL_REDIRECT, settings.ALLOWED_HOSTS = True, ["portal.example.com"]
    response = Client(REMOTE_ADDR="127.0.0.1").get("/metrics", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200 and b"portal_tenants" in response.content
    assert Client().post("/metrics").status_code == 405


def test_grafana_dashboard_names_only_exported_metrics(data):
    dashboard = json.loads((ROOT / "ops" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert len(exprs) >= 10
    exported = set()
    for family in _scrape().values():
        exported |= {s.name for s in family.samples} | {family.name}
    named = {name for expr in exprs for name in re.findall(r"\bportal_[a-z_]+", expr)}
    assert named and named <= exported, named - exported
