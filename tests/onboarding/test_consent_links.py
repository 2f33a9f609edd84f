"""Consent links: tenant-specific v1/v2 URLs, a 256-bit state kept only as a hash, single use, expiry, re-issue."""
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from emulator import world as demo
from onboarding.models import ConsentLink
from onboarding.services import consent_link_issue, state_hash
from portal.models import AuditEvent
from portal.services import Actor

STAFF = Actor.system("test")


@pytest.fixture
def tenant(portal_on_emulator, make_tenant):
    return make_tenant(tenant_id=demo.NORTHWIND, home_app=portal_on_emulator.app, consent_received_at=None)


def test_v2_link_names_the_tenant_scope_redirect_and_state(tenant, settings):
    link, url = consent_link_issue(tenant=tenant, actor=STAFF)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path.endswith(f"/{demo.NORTHWIND}/v2.0/adminconsent")
    assert query["client_id"] == demo.APP_ID and query["scope"] == "https://management.azure.com/.default"
    assert query["redirect_uri"] == f"{settings.PORTAL_PUBLIC_URL}/consent/callback/"
    assert len(query["state"]) >= 43  # 32 random bytes, base64url
    assert link.state_hash == state_hash(query["state"]) and query["state"] not in str(ConsentLink.objects.values())
    assert query["state"] not in AuditEvent.objects.get(action="consent_link.issued").canonical()
    assert link.expires_at - link.issued_at == timedelta(days=7)
    tenant.refresh_from_db()
    assert tenant.status == "invited"


def test_v1_link_has_no_scope(tenant):
    tenant.home_app.consent_version = "v1"
    tenant.home_app.save()
    _, url = consent_link_issue(tenant=tenant, actor=STAFF)
    assert urlsplit(url).path.endswith(f"/{demo.NORTHWIND}/adminconsent") and "scope=" not in url


def test_reissue_revokes_the_previous_link(tenant):
    first, _ = consent_link_issue(tenant=tenant, actor=STAFF)
    second, _ = consent_link_issue(tenant=tenant, actor=STAFF)
    first.refresh_from_db()
    assert first.revoked_at and first.outcome == "revoked" and second.usable
    assert AuditEvent.objects.filter(action="consent_link.issued").first().detail["revoked_previous"] == 1


def test_ttl_from_settings_and_offboarded_refused(tenant, settings):
    settings.CONSENT_LINK_TTL_DAYS = 2
    link, _ = consent_link_issue(tenant=tenant, actor=STAFF)
    assert link.expires_at - link.issued_at == timedelta(days=2)
    tenant.offboarded_at = timezone.now()
    with pytest.raises(ValidationError):
        consent_link_issue(tenant=tenant, actor=STAFF)


def test_issue_page_shows_the_link_once_with_a_message(tenant, staff_clients):
    url = reverse("onboarding:consent-link-issue", kwargs={"pk": tenant.pk})
    assert staff_clients["viewer"].post(url).status_code == 403
    page = staff_clients["operator"].post(url)
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    body = page.content.decode()
    assert "adminconsent" in body and "Copy the link" in body and "Global Administrator" in body
    assert ConsentLink.objects.get().issued_by.username == "operator-user"
    detail = staff_clients["operator"].get(reverse("onboarding:tenant-detail", kwargs={"pk": tenant.pk}))
    assert b"adminconsent?" not in detail.content and b"Re-issue the consent link" in detail.content
