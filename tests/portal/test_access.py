"""Every URL against every role: allowed, 403, or a redirect to the sign-in page."""
import pytest
from django.urls import get_resolver, reverse

from portal.roles import CAPABILITIES, ROLES
from tests.conftest import PASSWORD

# url name -> the capability it needs ("public" for pages anyone may open). A new URL must be added here:
# test_every_url_is_listed fails otherwise, so no page escapes this test.
ACCESS = {
    "console:home": "public-redirect",
    "console:dashboard": "view",
    "portal:login": "public",
    "portal:logout": "post-only",
    "portal:audit-list": "audit",
    "portal:audit-verify": "audit",
    "portal:audit-verify-run": "audit",
    "portal:login-locks": "administer",
    "onboarding:customer-list": "view",
    "onboarding:customer-create": "operate",
    "onboarding:bulk-import": "operate",
    "onboarding:customer-detail": "view",
    "onboarding:tenant-add": "post-only",
    "onboarding:tenant-detail": "view",
    "onboarding:consent-link-issue": "post-only",
    "onboarding:tenant-offboard": "operate",
    "onboarding:tenant-list": "view",
    "onboarding:tenant-export": "view",
    "onboarding:tenant-bulk": "post-only",  # POSTs by role: tests/onboarding/test_bulk_actions.py
    "onboarding:customer-edit": "operate",
    "onboarding:customer-archive": "operate",
    "onboarding:customer-unarchive": "post-only",  # tests/onboarding/test_customer_edit.py
    "onboarding:consent-callback": "public",
    "onboarding:consent-progress": "public",
    "exchange:identities": "view",
    "exchange:homeapp-create": "administer",
    "exchange:homeapp-edit": "administer",
    "exchange:homeapp-sync": "post-only",
    "exchange:identity-create": "administer",
    "exchange:identity-edit": "administer",
    "exchange:fic-create": "administer",
    "exchange:fic-delete": "administer",
    "exchange:tokentest-list": "view",
    "onboarding:tenant-picker": "view",
    "exchange:sweep-list": "view",
    "exchange:tokentest-detail": "view",
    "onboarding:tenant-test-now": "post-only",
    "onboarding:sweep-start": "post-only",
    "exchange:sweep-detail": "view",
    "exchange:access-profiles": "view",
    "exchange:access-profile-create": "administer",
    "exchange:access-profile-edit": "administer",
    "onboarding:customer-access-profile": "post-only",  # POSTs by role: tests/exchange/test_access_profiles.py
    "signin:start": "public",
    "signin:callback": "public",
    "ops:alert-list": "view",
    "ops:alert-settings": "administer",
    "ops:channel-create": "post-only",  # POSTs by role: tests/ops/test_views.py
    "ops:channel-delete": "post-only",
    "ops:route-create": "post-only",
    "ops:route-delete": "post-only",
    "ops:export-start": "post-only",  # by role and kind: tests/ops/test_exports.py
    "ops:export-list": "own-jobs",  # any staff role, each sees only their own jobs: tests/ops/test_exports.py
    "ops:export-detail": "own-jobs",
    "ops:export-download": "own-jobs",
    "exchange:estop": "view",
    "exchange:estop-engage": "administer",
    "exchange:estop-step": "post-only",  # by role: tests/exchange/test_estop.py
    "exchange:estop-detail": "view",
}

# URLs that need arguments: name -> a function of the test's objects returning kwargs (filled in by later modules).
URL_KWARGS: dict = {
    "exchange:homeapp-edit": lambda: {"pk": _tenant().home_app_id},
    "exchange:identity-edit": lambda: {"pk": _identity().pk},
    "exchange:fic-create": lambda: {"app_pk": _tenant().home_app_id, "identity_pk": _identity().pk},
    "exchange:fic-delete": lambda: {"pk": _fic().pk},
    "onboarding:customer-detail": lambda: {"pk": _tenant().customer_id},
    "onboarding:customer-edit": lambda: {"pk": _tenant().customer_id},
    "onboarding:customer-archive": lambda: {"pk": _tenant().customer_id},
    "onboarding:customer-unarchive": lambda: {"pk": _tenant().customer_id},
    "onboarding:tenant-detail": lambda: {"pk": _tenant().pk},
    "onboarding:tenant-offboard": lambda: {"pk": _tenant().pk},
    "exchange:tokentest-detail": lambda: {"pk": _token_test().pk},
    "exchange:sweep-detail": lambda: {"pk": _sweep().pk},
    "portal:audit-verify-run": lambda: {"pk": _verification().pk},
    "exchange:access-profile-edit": lambda: {"pk": _access_profile().pk},
    "onboarding:customer-access-profile": lambda: {"pk": _tenant().customer_id},
    "exchange:estop-step": lambda: {"step": "canary"},
    "exchange:estop-detail": lambda: {"pk": _estop().pk},
}


def _verification():
    from portal.verify_models import AuditVerification

    return AuditVerification.objects.first() or AuditVerification.objects.create(mode="full", status="intact")


def _estop():
    """An emergency stop that ended (one in force would stop the other tests' exchanges)."""
    from django.utils import timezone

    from exchange.models import EmergencyStop

    return EmergencyStop.objects.first() or EmergencyStop.objects.create(
        reason="r", engaged_by_label="t", stage="ended", current=None, ended_at=timezone.now())


def _access_profile():
    from exchange.models import AccessProfile

    return AccessProfile.objects.first() or AccessProfile.objects.create(name="p", grants=[{"role": "Reader",
                                                                                            "scope": "*"}])


def _identity():
    from exchange.models import ManagedIdentity

    return ManagedIdentity.objects.first() or ManagedIdentity.objects.create(
        name="w", client_id="33333333-3333-4333-8333-333333333333", principal_id="44444444-4444-4444-8444-444444444444",
        tenant_id="11111111-1111-4111-8111-111111111111")


def _fic():
    from exchange.models import FederatedCredential

    return FederatedCredential.objects.first() or FederatedCredential.objects.create(
        home_app=_tenant().home_app, graph_id="g", name="n", issuer="i", subject="s", audiences=["a"])


def _tenant():
    from onboarding.models import CustomerTenant

    return CustomerTenant.objects.first()


def _token_test():
    from exchange.models import TokenTest
    from onboarding.models import CustomerTenant

    return TokenTest.objects.first() or TokenTest.objects.create(tenant=CustomerTenant.objects.first(),
                                                                 trigger="manual")


def _sweep():
    from exchange.models import Sweep

    return Sweep.objects.first() or Sweep.objects.create(trigger="manual")


def _named_routes():
    names = set()
    resolver = get_resolver()
    for namespace, (_prefix, sub) in resolver.namespace_dict.items():
        if namespace in ("admin", "api-v1"):  # the API's routes: every role in tests/api/test_contract.py
            continue
        for name in sub.reverse_dict:
            if isinstance(name, str):
                names.add(f"{namespace}:{name}")
    return names


def test_every_url_is_listed():
    assert _named_routes() - set(ACCESS) == set(), "add the new URLs to ACCESS with the capability they need"


@pytest.mark.parametrize("name", sorted(n for n, cap in ACCESS.items() if cap in CAPABILITIES))
def test_url_against_every_role(name, staff_clients, make_tenant):
    make_tenant()
    url = reverse(name, kwargs=URL_KWARGS[name]() if name in URL_KWARGS else None)
    capability = ACCESS[name]
    anonymous = staff_clients[None].get(url)
    assert anonymous.status_code == 302 and reverse("portal:login") in anonymous["Location"]
    for role in ROLES:
        response = staff_clients[role].get(url)
        expected = 200 if role in CAPABILITIES[capability] else 403
        assert response.status_code == expected, f"{role} on {name}: {response.status_code}"


def test_home_sends_each_role_to_its_page(staff_clients):
    assert staff_clients["viewer"].get(reverse("console:home"))["Location"] == reverse("console:dashboard")
    assert staff_clients["auditor"].get(reverse("console:home"))["Location"] == reverse("portal:audit-list")


@pytest.mark.parametrize("role, home", [("auditor", "portal:audit-list"), ("viewer", "console:dashboard")])
def test_signing_in_with_a_password_lands_on_the_roles_home(client, make_staff, role, home):
    """An auditor signs in to the audit trail, not to a dashboard it may not see."""
    make_staff(role, f"{role}-home")
    response = client.post(reverse("portal:login"), {"username": f"{role}-home", "password": PASSWORD}, follow=True)
    assert response.redirect_chain[-1][0] == reverse(home) and response.status_code == 200


def test_forbidden_page_is_the_portal_page(staff_clients):
    response = staff_clients["auditor"].get(reverse("console:dashboard"))
    assert response.status_code == 403
    assert b"You don't have access to this page" in response.content


def test_unknown_page_is_the_portal_404(staff_clients):
    response = staff_clients["viewer"].get("/no-such-page/")
    assert response.status_code == 404
    assert b"Page not found" in response.content


def test_logout_needs_post(staff_clients):
    assert staff_clients["viewer"].get(reverse("portal:logout")).status_code == 405


def test_nav_shows_only_what_the_role_may_open(staff_clients):
    viewer_page = staff_clients["viewer"].get(reverse("console:dashboard")).content.decode()
    assert reverse("portal:audit-list") not in viewer_page
    assert reverse("onboarding:customer-list") in viewer_page
    auditor_page = staff_clients["auditor"].get(reverse("portal:audit-list")).content.decode()
    assert reverse("onboarding:customer-list") not in auditor_page
