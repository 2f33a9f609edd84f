"""The chain against the emulator over real HTTPS: a consented tenant is verified, and each misconfiguration of the tenant,
the FIC or the app gets its outcome and diagnosis."""

import pytest

from emulator import world as demo
from exchange import chain
from tests.exchange.conftest import run_test


def test_consented_tenant_with_a_role_is_verified(run_for, portal_on_emulator):
    test = run_for(demo.FABRIKAM)
    assert (test.status, test.outcome, test.diagnosis_code, test.attempts) == ("succeeded", "verified", "verified", 1)
    steps = {s.name: s for s in test.steps.all()}
    assert list(steps) == ["imds", "home_token", "tenant_token", "arm_probe", "access_check"]
    assert all(s.ok for s in steps.values())
    assert steps["imds"].claims["sub"] == demo.MI_PRINCIPAL_ID
    assert steps["imds"].claims["aud"] == "fb60f99c-7a34-4190-8149-302f77469936"
    assert steps["tenant_token"].claims["tid"] == demo.FABRIKAM
    assert steps["tenant_token"].claims["aud"] == "https://management.azure.com"
    assert steps["tenant_token"].http_status == 200
    assert steps["arm_probe"].detail["subscriptions"][0]["name"] == "Fabrikam Production"
    assert steps["access_check"].detail["held"] == [{"role": "Reader", "scope": "/subscriptions/e1000000-0000-4000-8000-"
                                                     "000000000001", "via": "role assignment",
                                                     "at": "/subscriptions/e1000000-0000-4000-8000-000000000001"}]
    tenant = test.tenant
    tenant.refresh_from_db()
    assert tenant.status == "verified" and tenant.verified_at and tenant.consecutive_failures == 0


def test_managed_identity_token_is_fetched_once_for_many_tenants(run_for, portal_on_emulator):
    portal_on_emulator.control.reset_requests()
    for tenant_id in (demo.FABRIKAM, demo.TAILSPIN, demo.NORTHWIND):
        run_for(tenant_id)
    counts = portal_on_emulator.control.requests()["by_endpoint"]
    assert counts["imds"] == 1
    assert counts["token"] == 6  # home + customer tenant, three tenants


@pytest.mark.parametrize("tenant_id, outcome, code", [
    (demo.NORTHWIND, "not_consented", "AADSTS700016"),
    (demo.TAILSPIN, "no_role", "no_role"),
    ("0badc0de-0000-4000-8000-000000000000", "tenant_not_found", "AADSTS90002"),
])
def test_tenant_side_problems_are_diagnosed(run_for, tenant_id, outcome, code):
    test = run_for(tenant_id)
    assert (test.status, test.outcome, test.diagnosis_code, test.attempts) == ("failed", outcome, code, 1)


def test_role_refused_by_arm_is_no_role(portal_on_emulator, run_for):
    portal_on_emulator.app.probe_resource_id = "/subscriptions/e1000000-0000-4000-8000-000000000003"
    portal_on_emulator.app.save()
    test = run_for(demo.TAILSPIN)
    probe = test.steps.get(name="arm_probe")
    assert (test.outcome, probe.http_status, probe.error) == ("no_role", 403, "AuthorizationFailed")


def _world_with_fic(**changes):
    world = demo.demo_world()
    fic = world["apps"][0]["fics"][0]
    fic.update(changes)
    return world


@pytest.mark.parametrize("fic_change, code", [
    ({"issuer": "https://login.microsoftonline.com/00000000-0000-4000-8000-000000000001/v2.0"}, "AADSTS700211"),
    ({"audiences": ["api://SomethingElse"]}, "AADSTS700212"),
    ({"subject": demo.MI_PRINCIPAL_ID.upper()}, "AADSTS700213"),
    ({"subject": "00000000-0000-4000-8000-00000000beef"}, "AADSTS70021"),
])
def test_fic_mistakes_are_diagnosed(make_emulator, portal_on_emulator, make_tenant, settings,
                                    django_capture_on_commit_callbacks, fic_change, code):
    emu = make_emulator(_world_with_fic(**fic_change))
    settings.ENTRA_BASE_URL, settings.IMDS_URL = emu.base_url, emu.imds_url
    chain.reset_clients()
    test = run_test(make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app),
                django_capture_on_commit_callbacks)
    assert (test.outcome, test.diagnosis_code, test.attempts) == ("misconfigured", code, 1)
    failed = test.steps.get(ok=False)
    assert failed.name == "home_token" and failed.trace_id and failed.correlation_id


def test_no_fic_at_all_is_70021(make_emulator, portal_on_emulator, make_tenant, settings,
                                django_capture_on_commit_callbacks):
    world = demo.demo_world()
    world["apps"][0]["fics"] = []
    emu = make_emulator(world)
    settings.ENTRA_BASE_URL, settings.IMDS_URL = emu.base_url, emu.imds_url
    chain.reset_clients()
    test = run_test(make_tenant(tenant_id=demo.FABRIKAM, home_app=portal_on_emulator.app),
                django_capture_on_commit_callbacks)
    assert test.diagnosis_code == "AADSTS70021"


def test_clock_skew_expires_the_assertion(portal_on_emulator, run_for):
    portal_on_emulator.control.clock(skew_seconds=2 * 86400)
    test = run_for(demo.FABRIKAM)
    assert (test.outcome, test.diagnosis_code) == ("misconfigured", "AADSTS700024")


def test_disabled_app_and_unknown_identity(portal_on_emulator, run_for):
    portal_on_emulator.control.disable_app(app_id=demo.APP_ID)
    assert run_for(demo.FABRIKAM).diagnosis_code == "AADSTS7000112"
    portal_on_emulator.control.disable_app(app_id=demo.APP_ID, disabled=False)
    identity = portal_on_emulator.identity
    identity.client_id = "99999999-9999-4999-8999-999999999999"
    identity.save()
    chain.reset_clients()
    test = run_for(demo.TAILSPIN)
    assert (test.outcome, test.diagnosis_code) == ("misconfigured", "IMDS:identity_not_found")
    assert test.steps.get().http_status == 400


def test_customer_side_blocks_are_diagnosed(portal_on_emulator, run_for):
    portal_on_emulator.control.block_by_conditional_access(tenant=demo.FABRIKAM, app_id=demo.APP_ID)
    test = run_for(demo.FABRIKAM)
    assert (test.outcome, test.diagnosis_code) == ("blocked", "AADSTS53003")
    portal_on_emulator.control.block_by_conditional_access(tenant=demo.FABRIKAM, app_id=demo.APP_ID, on=False)
    portal_on_emulator.control.disable_service_principal(tenant=demo.TAILSPIN, app_id=demo.APP_ID)
    assert run_for(demo.TAILSPIN).diagnosis_code == "AADSTS500014"


def test_no_identity_in_use(portal_on_emulator, run_for):
    portal_on_emulator.identity.in_use = False
    portal_on_emulator.identity.save()
    assert run_for(demo.FABRIKAM).diagnosis_code == "no_identity"
