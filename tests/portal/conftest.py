"""Fixtures of the portal's tests: a small world of records, so that every staff page has something to show."""
from types import SimpleNamespace

import pytest
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from exchange import rollups
from exchange.models import Sweep, TokenTest
from onboarding.services import consent_link_issue
from onboarding.views import PROGRESS_SALT
from portal.services import Actor


@pytest.fixture
def pages_world(make_tenant, make_staff):
    """A tenant with a verified and a failed token test (the dashboard draws its chart), a sweep, and a consent link
    waiting for its verification; the URLs of the pages that show them."""

    tenant = make_tenant()
    now = timezone.now()
    verified = TokenTest.objects.create(tenant=tenant, trigger="manual", status="succeeded", outcome="verified",
                                        diagnosis_code="verified", started_at=now, finished_at=now)
    TokenTest.objects.create(tenant=tenant, trigger="manual", status="failed", outcome="not_consented",
                             diagnosis_code="AADSTS7000229", started_at=now, finished_at=now)
    rollups.tests_counted([(now, "verified", "verified"), (now, "not_consented", "AADSTS7000229")])  # as finish() would
    sweep = Sweep.objects.create(trigger="manual", total=2, done=2, succeeded=1, failed=1, finished_at=now)
    link, _ = consent_link_issue(tenant=make_tenant(), actor=Actor.system("test"))
    progress = reverse("onboarding:consent-progress", args=[signing.dumps(link.pk, salt=PROGRESS_SALT)])
    staff = [
        reverse("console:dashboard"), reverse("onboarding:customer-list"),
        reverse("onboarding:customer-detail", args=[tenant.customer.pk]), reverse("onboarding:customer-create"),
        reverse("onboarding:bulk-import"), reverse("onboarding:tenant-detail", args=[tenant.pk]),
        reverse("onboarding:tenant-offboard", args=[tenant.pk]), reverse("exchange:identities"),
        reverse("exchange:homeapp-create"), reverse("exchange:homeapp-edit", args=[tenant.home_app.pk]),
        reverse("exchange:identity-create"), reverse("exchange:tokentest-list"),
        reverse("exchange:tokentest-detail", args=[verified.pk]), reverse("exchange:sweep-detail", args=[sweep.pk]),
        reverse("portal:audit-list"), reverse("portal:audit-verify"),
    ]
    return SimpleNamespace(tenant=tenant, test=verified, sweep=sweep, progress=progress, staff_pages=staff)
