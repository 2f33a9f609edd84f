"""The demo keeps its promise: its customers show every state but the one you reach yourself, and consenting Northwind
on the emulator's page reaches "Access verified" (the demo world's admin assigns the agreed role while consenting)."""
from urllib.parse import parse_qs, urlsplit

from django.test import Client

from console.management.commands.demo import Command
from emulator import world as demo
from exchange.models import TokenTest
from onboarding.models import CustomerTenant
from onboarding.services import consent_link_issue, customer_create, tenant_add
from portal.services import Actor
from tests.emulator.test_consent import _decide


def test_the_demo_customers_show_each_state(portal_on_emulator, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):  # the sweep's tests run when it commits
        Command()._demo_customers(portal_on_emulator.app)
    states = {t.primary_domain: t.status for t in CustomerTenant.objects.all()}
    assert states == {"fabrikam.example": "verified", "tailspin.example": "no_role", "woodgrove.example": "failing",
                      "adatum.example": "declined", "litware.example": "invited", "proseware.example": "draft",
                      "wingtip.example": "offboarded"}
    assert set(CustomerTenant.Status.values) - set(states.values()) == {"consent_received"}  # a moment, not a state
    with django_capture_on_commit_callbacks(execute=True):
        Command()._demo_customers(portal_on_emulator.app)  # a second start adds nobody
    assert CustomerTenant.objects.count() == 7


def test_consenting_northwind_reaches_access_verified(portal_on_emulator, emulator_http, emulator,
                                                      django_capture_on_commit_callbacks, settings):
    settings.PORTAL_PUBLIC_URL = "http://127.0.0.1:8000"  # the demo's callback, registered on the demo app
    actor = Actor.system("test")
    tenant = tenant_add(customer=customer_create(name="Northwind", actor=actor), domain_or_id="northwind.example",
                        home_app=portal_on_emulator.app, actor=actor)
    _link, url = consent_link_issue(tenant=tenant, actor=actor)
    state = parse_qs(urlsplit(url).query)["state"][0]
    params = _decide(emulator_http, emulator, demo.NORTHWIND, "accept") | {"state": state}
    with django_capture_on_commit_callbacks(execute=True):
        Client().get("/consent/callback/", params)
    tenant.refresh_from_db()
    test = TokenTest.objects.get(tenant=tenant)
    assert (tenant.status, test.trigger, test.outcome) == ("verified", "consent", "verified")
    assert test.steps.get(name="access_check").detail["held"][0]["role"] == "Reader"
