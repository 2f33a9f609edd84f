"""A tenant without the agreed access: its page names what the app sees and lacks, its service principal's object id,
and gives the message, the `az role assignment create` commands and the portal links; the primary button of every
tenant is the next step its status calls for."""
import shlex

import pytest
from django.urls import reverse
from django.utils import timezone

from emulator import world as demo
from exchange.models import AccessProfile
from onboarding import selectors
from onboarding.models import Customer, CustomerTenant
from tests.exchange.conftest import run_test

FABRIKAM_SUB = "/subscriptions/e1000000-0000-4000-8000-000000000001"
DCR = f"{FABRIKAM_SUB}/resourceGroups/monitoring/providers/Microsoft.Insights/dataCollectionRules/dcr-syslog"


@pytest.fixture
def tested(portal_on_emulator, make_tenant, django_capture_on_commit_callbacks):
    def test(tenant_id, customer=None):
        tenant = make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app, customer=customer)
        return run_test(tenant, django_capture_on_commit_callbacks)
    return test


def _page(client, tenant):
    return client.get(reverse("onboarding:tenant-detail", args=[tenant.pk])).content.decode()


def test_the_no_role_panel_says_what_is_missing_and_what_to_send(tested, staff_clients):
    profile = AccessProfile.objects.create(name="Monitoring", grants=[
        {"role": "Reader", "scope": "*"}, {"role": "Monitoring Metrics Publisher", "scope": DCR}])
    test = tested(demo.FABRIKAM, Customer.objects.create(name="Fabrikam", access_profile=profile))
    principal = test.steps.get(name="tenant_token").claims["oid"]
    request = selectors.access_request(test.tenant)
    command = (f"az role assignment create --assignee-object-id {principal} --assignee-principal-type "
               f"ServicePrincipal --role 'Monitoring Metrics Publisher' --scope {DCR}")
    assert request.commands == command
    assert shlex.split(command)[-1] == DCR
    assert request.subscriptions == [{"id": FABRIKAM_SUB.rsplit("/", 1)[1], "name": "Fabrikam Production",
                                      "state": "Enabled"}]
    assert request.missing[0].portal_url == f"https://portal.azure.com/#@{demo.FABRIKAM}/resource{DCR}/users"
    page = _page(staff_clients["operator"], test.tenant)
    for shown in (principal, "Fabrikam Production", "Monitoring Metrics Publisher on " + DCR, "Copy the role request",
                  "Reader on every subscription it can see", "/resource" + DCR + "/users"):
        assert shown in page
    assert f"object id {principal} in your tenant" in request.message and "Review + assign" in request.message


def test_no_visible_subscription_asks_for_the_subscription(tested, staff_clients):
    test = tested(demo.TAILSPIN)
    request = selectors.access_request(test.tenant)
    assert request.subscriptions == [] and request.principal_id
    assert request.commands.endswith("--role Reader --scope /subscriptions/<subscription id>")
    assert request.missing[0].portal_url.endswith("/view/Microsoft_Azure_Billing/SubscriptionsBlade")
    assert "None" in _page(staff_clients["viewer"], test.tenant)


def test_a_verified_tenant_has_no_panel(tested, staff_clients):
    test = tested(demo.FABRIKAM)
    assert selectors.access_request(test.tenant) is None
    assert 'id="no-role"' not in _page(staff_clients["operator"], test.tenant)


@pytest.mark.parametrize("facts, button, kind", [
    ({"consent_received_at": None}, "Issue a consent link", "issue_link"),
    ({"consent_received_at": None, "invited_at": timezone.now()}, "Re-issue the consent link", "issue_link"),
    ({"last_outcome": "no_role"}, "Test now", "test_now"),  # no test recorded what is missing: test first
    ({"last_outcome": "not_consented"}, "Open the failing test", "open_test"),
    ({"last_outcome": "verified"}, "Test now", "test_now"),
    ({"consent_received_at": None, "declined_at": timezone.now()}, "Issue a new consent link", "issue_link"),
    ({"offboarded_at": timezone.now()}, "Test now to confirm removal", "test_now"),
])
def test_the_primary_button_is_the_next_step(make_tenant, staff_clients, facts, button, kind):
    tenant = make_tenant(**facts)
    action = selectors.next_action(CustomerTenant.objects.get(pk=tenant.pk), role_request=False)
    assert (action.button, action.kind) == (button, kind)
    page = _page(staff_clients["operator"], tenant)
    if kind != "open_test":  # a link only once a test exists
        assert f'id="next-action">{button}<' in page
    assert 'id="next-action"' not in _page(staff_clients["viewer"], tenant)
