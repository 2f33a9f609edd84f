"""The state watcher: one alert per transition, consent news, credential findings, outages (one alert for many
tenants, one notice when over), the daily digest; and the watcher's query count does not grow with tenants."""
from datetime import timedelta

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from exchange.breaker import breaker_observe
from exchange.models import TokenTest
from exchange.signals import tenants_tested
from ops import services
from ops.models import Alert, Delivery, TenantWatch
from portal.services import Actor

ADMIN = Actor.system("test")


@pytest.fixture
def mailbox(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    channel, _ = services.channel_create(actor=ADMIN, name="mail", kind="email", addresses=["noc@mssp.example"])
    services.route_create(actor=ADMIN, channel=channel)
    return mail.outbox


def _watch(capture):
    with capture(execute=True):
        return services.alerts_watch()


def _tested(tenants, outcome):
    """What exchange records when tests finish (the tests, and its signal: the tenants' health), for many tenants."""
    now = timezone.now()
    for tenant in tenants:
        TokenTest.objects.create(tenant=tenant, trigger="sweep", status="failed" if outcome != "verified" else
                                 "succeeded", outcome=outcome, diagnosis_code=outcome, finished_at=now)
    tenants_tested.send(sender=TokenTest, tenant_pks=[t.pk for t in tenants], outcome=outcome, at=now)


def test_one_alert_per_transition_and_consent_news(make_tenant, mailbox, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    old = make_tenant(consent_received_at=timezone.now() - timedelta(days=3), last_outcome="verified")
    fresh = make_tenant()  # consent just received
    created = _watch(capture)
    assert [(a.kind, a.tenant_id) for a in created] == [("consent_received", fresh.pk)]
    assert _watch(capture) == []
    _tested([old], "no_role")
    assert [a.kind for a in _watch(capture)] == ["lost_access"]
    _tested([old], "not_consented")  # no_role → failing: still without access, no second "lost" alert
    assert _watch(capture) == []
    _tested([old], "transient")  # no news about the tenant
    assert _watch(capture) == []
    _tested([old], "verified")
    assert [a.kind for a in _watch(capture)] == ["restored"]
    _tested([old], "no_role")
    assert [a.kind for a in _watch(capture)] == ["lost_access"]  # a new transition, a new alert
    assert TenantWatch.objects.get(tenant=old).version == 4
    assert [m.subject.split("] ")[1].split(":")[0] for m in mailbox] == [
        "Consent received", "Access lost", "Access restored", "Access lost"]


def test_outage_of_many_tenants_is_one_alert(make_tenant, mailbox, settings, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    settings.ALERTS_OUTAGE_MIN_TENANTS = 10
    tenants = [make_tenant(consent_received_at=timezone.now() - timedelta(days=1), last_outcome="verified")
               for _ in range(12)]
    _watch(capture)
    _tested(tenants, "transient")
    created = _watch(capture)
    assert [(a.kind, a.facts["endpoint"], a.facts["tenants"]) for a in created] == [
        ("outage", "token_exchange", 12)]
    assert _watch(capture) == []  # deduplicated while it lasts
    _tested(tenants, "verified")
    TokenTest.objects.filter(outcome="transient").update(finished_at=timezone.now() - timedelta(hours=1))
    assert [a.kind for a in _watch(capture)] == ["outage_over"]
    assert len(mailbox) == 2 and Alert.objects.filter(kind__in=["lost_access", "restored"]).count() == 0


def test_open_circuit_breaker_is_one_alert_per_endpoint(make_tenant, mailbox, settings,
                                                        django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    settings.BREAKER_MIN_FAILURES = 10
    make_tenant()
    _watch(capture)
    breaker_observe(counts={("global", "tenant_token"): [0, 25]})
    created = _watch(capture)
    assert [(a.kind, a.facts["cloud"], a.facts["endpoint"]) for a in created] == [("outage", "global",
                                                                                  "tenant_token")]
    breaker_observe(counts={("global", "tenant_token"): [0, 5]})
    assert _watch(capture) == []
    breaker_observe(counts={("global", "tenant_token"): [1, 0]})  # it answers: the breaker closes
    assert [a.kind for a in _watch(capture)] == ["outage_over"]


def test_credential_finding_appears_and_resolves(make_home_app, mailbox, django_capture_on_commit_callbacks):
    capture = django_capture_on_commit_callbacks
    app = make_home_app(graph_synced_at=timezone.now(), sign_in_audience="AzureADMultipleOrgs",
                        redirect_uris=["http://127.0.0.1:8000/consent/callback/"])
    assert _watch(capture) == []
    type(app).objects.filter(pk=app.pk).update(sign_in_audience="AzureADMyOrg")
    created = _watch(capture)
    assert [(a.kind, a.facts["code"]) for a in created] == [("finding", "single_tenant")]
    assert _watch(capture) == []
    type(app).objects.filter(pk=app.pk).update(sign_in_audience="AzureADMultipleOrgs")
    assert [(a.kind, a.facts["code"]) for a in _watch(capture)] == [("finding_resolved", "single_tenant")]


def test_watcher_queries_do_not_grow_with_tenants(make_tenant, django_capture_on_commit_callbacks):
    def queries(n):
        tenants = [make_tenant(last_outcome="verified") for _ in range(n)]
        _watch(django_capture_on_commit_callbacks)
        type(tenants[0]).objects.filter(pk__in=[t.pk for t in tenants]).update(last_outcome="no_role")
        with CaptureQueriesContext(connection) as ctx:
            created = _watch(django_capture_on_commit_callbacks)
        assert len(created) == n
        return len(ctx.captured_queries)

    few = queries(3)
    many = queries(40)
    assert many == few, (few, many)


def test_routes_by_customer_and_kind(make_tenant, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mine, other = make_tenant(), make_tenant()
    channel, _ = services.channel_create(actor=ADMIN, name="one customer", kind="email", addresses=["a@x.example"])
    services.route_create(actor=ADMIN, channel=channel, customer=mine.customer, kinds=["consent_received"])
    created = _watch(django_capture_on_commit_callbacks)
    assert sorted(a.tenant_id for a in created) == sorted([mine.pk, other.pk])
    assert [d.alert.tenant_id for d in Delivery.objects.select_related("alert")] == [mine.pk]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["a@x.example"]


def test_daily_digest_once_per_day(make_tenant, mailbox, django_capture_on_commit_callbacks):
    make_tenant()
    _watch(django_capture_on_commit_callbacks)
    with django_capture_on_commit_callbacks(execute=True):
        digest = services.digest_send()
        assert services.digest_send() is None
    assert digest.facts["alerts"] == {"consent_received": 1}
    assert digest.facts["tenants"]["consent_received"] == 1
    assert mailbox[-1].subject.endswith(digest.title) and "Consent received: 1" in mailbox[-1].body
