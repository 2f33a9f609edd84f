"""The access check against the emulator's ARM over real HTTPS: the agreed (role, scope) pairs of the customer's access
profile held, missing, inherited from a parent scope, on a data collection rule, or covered by a broader role."""
from emulator import world as demo
from exchange.models import AccessProfile
from exchange.selectors import agreed_grants
from onboarding.models import Customer
from tests.exchange.conftest import run_test

FABRIKAM_SUB = "/subscriptions/e1000000-0000-4000-8000-000000000001"
TAILSPIN_SUB = "/subscriptions/e1000000-0000-4000-8000-000000000003"
DCR = "/resourceGroups/monitoring/providers/Microsoft.Insights/dataCollectionRules/dcr-syslog"
MMP = "Monitoring Metrics Publisher"


def _customer(*grants):
    profile = AccessProfile.objects.create(name=f"Agreed {AccessProfile.objects.count()}", grants=[
        {"role": role, "scope": scope} for role, scope in grants])
    return Customer.objects.create(name=f"Customer of {profile.name}", access_profile=profile)


def _check(test):
    return test.steps.get(name="access_check")


def test_the_default_profile_is_reader_on_every_visible_subscription(run_for):
    test = run_for(demo.FABRIKAM)
    check = _check(test)
    assert test.outcome == "verified" and check.ok
    assert check.detail["agreed"] == [{"role": "Reader", "scope": "*"}]
    assert check.detail["principal_id"] == test.steps.get(name="tenant_token").claims["oid"]


def test_no_visible_subscription_is_missing_reader_on_every_subscription(run_for):
    test = run_for(demo.TAILSPIN)
    check = _check(test)
    assert (test.outcome, check.error_code) == ("no_role", "no_role")
    assert check.detail["missing"] == [{"role": "Reader", "scope": "*",
                                        "reason": "ARM lists no subscription the app can see."}]
    assert check.message == "Missing: Reader on every subscription it can see"


def test_a_role_inherited_from_the_subscription_counts_on_a_resource_group(run_for):
    test = run_for(demo.FABRIKAM, customer=_customer(("Reader", f"{FABRIKAM_SUB}/resourceGroups/monitoring")))
    held = _check(test).detail["held"]
    assert test.outcome == "verified"
    assert held == [{"role": "Reader", "scope": f"{FABRIKAM_SUB}/resourceGroups/monitoring", "via": "role assignment",
                     "at": FABRIKAM_SUB}]


def test_exactly_what_is_missing_is_recorded(run_for):
    test = run_for(demo.FABRIKAM, customer=_customer(("Reader", "*"), (MMP, FABRIKAM_SUB + DCR)))
    check = _check(test)
    assert test.outcome == "no_role" and test.status == "failed"
    assert [g["role"] for g in check.detail["held"]] == ["Reader"]
    assert check.detail["missing"] == [{"role": MMP, "scope": FABRIKAM_SUB + DCR, "holds": ["Reader"],
                                        "reason": "No assignment of this role at this scope or above it."}]
    assert check.message == f"Missing: {MMP} on {FABRIKAM_SUB + DCR}"


def test_the_role_granted_on_the_data_collection_rule_is_verified(run_for, portal_on_emulator):
    portal_on_emulator.control.add_role(tenant=demo.FABRIKAM, app_id=demo.APP_ID, role=MMP, scope=FABRIKAM_SUB + DCR)
    test = run_for(demo.FABRIKAM, customer=_customer(("Reader", "*"), (MMP, FABRIKAM_SUB + DCR)))
    assert test.outcome == "verified"
    assert _check(test).detail["held"][1] == {"role": MMP, "scope": FABRIKAM_SUB + DCR, "via": "role assignment",
                                              "at": FABRIKAM_SUB + DCR}


def test_a_role_that_may_not_read_assignments_is_checked_through_its_permissions(run_for, portal_on_emulator):
    """Monitoring Metrics Publisher alone cannot read role assignments (403): its permissions on the rule show it."""
    portal_on_emulator.control.add_role(tenant=demo.TAILSPIN, app_id=demo.APP_ID, role=MMP, scope=TAILSPIN_SUB + DCR)
    test = run_for(demo.TAILSPIN, customer=_customer((MMP, TAILSPIN_SUB + DCR)))
    assert test.outcome == "verified"
    assert _check(test).detail["held"] == [{"role": MMP, "scope": TAILSPIN_SUB + DCR, "via": "permissions",
                                            "at": TAILSPIN_SUB + DCR}]


def test_a_broader_role_covers_the_agreed_one(run_for, portal_on_emulator):
    portal_on_emulator.control.add_role(tenant=demo.TAILSPIN, app_id=demo.APP_ID, role="Contributor",
                                        subscription_id=TAILSPIN_SUB.rsplit("/", 1)[1])
    test = run_for(demo.TAILSPIN)
    assert test.outcome == "verified" and _check(test).detail["held"][0]["via"] == "permissions"


def test_a_scope_that_does_not_exist_is_missing(run_for):
    test = run_for(demo.FABRIKAM, customer=_customer(("Reader", "/subscriptions/e9999999-0000-4000-8000-000000000009")))
    gap = _check(test).detail["missing"][0]
    assert test.outcome == "no_role" and gap["reason"].startswith("ARM: SubscriptionNotFound")


def test_granting_the_missing_role_then_testing_again_verifies(portal_on_emulator, make_tenant,
                                                              django_capture_on_commit_callbacks):
    tenant = make_tenant(tenant_id=demo.TAILSPIN, home_app=portal_on_emulator.app)
    assert run_test(tenant, django_capture_on_commit_callbacks).outcome == "no_role"
    portal_on_emulator.control.add_role(tenant=demo.TAILSPIN, app_id=demo.APP_ID)  # every subscription of the tenant
    assert run_test(tenant, django_capture_on_commit_callbacks).outcome == "verified"


def test_agreed_grants_fall_back_to_the_default_profile(make_tenant):
    mine = make_tenant(customer=_customer((MMP, FABRIKAM_SUB + DCR)))
    other = make_tenant(tenant_id="c2b3c4d5-e6f7-4a81-9b0c-1d2e3f4a5b62")
    grants = agreed_grants([mine, other])
    assert grants[mine.pk] == [{"role": MMP, "scope": FABRIKAM_SUB + DCR}]
    assert grants[other.pk] == [{"role": "Reader", "scope": "*"}]


def test_an_app_probing_one_resource_is_checked_on_its_subscription(run_for, portal_on_emulator):
    portal_on_emulator.app.probe_resource_id = f"{FABRIKAM_SUB}/resourceGroups/monitoring"
    portal_on_emulator.app.save()
    test = run_for(demo.FABRIKAM)
    assert test.outcome == "verified"
    assert _check(test).detail["held"][0]["scope"] == FABRIKAM_SUB


def test_the_default_profile_costs_one_arm_request_per_visible_subscription(run_for, portal_on_emulator):
    """The probe lists the subscriptions, then one role-assignment read each (Reader's id is named without asking)."""
    portal_on_emulator.control.reset_requests()
    assert run_for(demo.FABRIKAM).outcome == "verified"
    assert portal_on_emulator.control.requests()["by_endpoint"]["arm"] == 2
