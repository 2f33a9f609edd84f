"""The emulator's Microsoft.Authorization answers (role assignments, role definitions, permissions) with ARM's shapes
and documented refusals, and its role control (`roles/add`, which failed with KeyError('subscription_id'))."""
import pytest
import requests

from emulator import world as demo
from tests.emulator.test_consent import _decide
from tests.emulator.test_protocol import _exchange, _mi

FABRIKAM_SUB = "/subscriptions/e1000000-0000-4000-8000-000000000001"
TAILSPIN_SUB = "/subscriptions/e1000000-0000-4000-8000-000000000003"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
API = {"api-version": "2022-04-01"}


@pytest.fixture
def arm(emulator_http, emulator):
    """arm(path, tenant=FABRIKAM, **params): a GET with the app's ARM token of that tenant."""
    mi = _mi(emulator_http, emulator).json()["access_token"]
    tokens = {}

    def get(path, tenant=demo.FABRIKAM, headers=None, **params):
        if tenant not in tokens:
            tokens[tenant] = _exchange(emulator_http, emulator, tenant, mi).json()["access_token"]
        return emulator_http.get(f"{emulator.base_url}{path}", params=params,
                                 headers={"Authorization": f"Bearer {tokens[tenant]}"} if headers is None else headers)
    return get


def _code(response, status):
    assert response.status_code == status and response.headers["x-ms-correlation-request-id"]
    return response.json()["error"]["code"]


def _principal(emulator, tenant):
    return next(sp["object_id"] for sp in emulator.world.data["service_principals"] if sp["tenant"] == tenant)


def test_role_assignments_at_and_above_a_scope(arm, emulator):
    principal = _principal(emulator, demo.FABRIKAM)
    listed = arm(f"{FABRIKAM_SUB}/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments",
                 **{"$filter": f"atScope() and assignedTo('{principal}')"}, **API).json()["value"]
    assert len(listed) == 1
    assignment = listed[0]
    assert assignment["type"] == "Microsoft.Authorization/roleAssignments"
    assert assignment["id"] == f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleAssignments/{assignment['name']}"
    assert assignment["properties"] | {"createdOn": None, "updatedOn": None} == {
        "roleDefinitionId": f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleDefinitions/{READER}",
        "principalId": principal, "principalType": "ServicePrincipal", "scope": FABRIKAM_SUB, "condition": None,
        "conditionVersion": None, "createdOn": None, "updatedOn": None, "createdBy": None, "updatedBy": None,
        "delegatedManagedIdentityResourceId": None, "description": None}
    other = arm(f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleAssignments",
                **{"$filter": "assignedTo('00000000-0000-4000-8000-000000000000')"}, **API).json()
    assert other == {"value": []}


def test_role_definitions_and_permissions(arm):
    reader = arm(f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleDefinitions/{READER}", **API).json()
    assert reader["properties"]["roleName"] == "Reader" and reader["name"] == READER
    assert reader["properties"]["permissions"][0]["actions"] == ["*/read"]
    named = arm(f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleDefinitions",
                **{"$filter": "roleName eq 'Monitoring Metrics Publisher'"}, **API).json()["value"]
    assert [d["properties"]["roleName"] for d in named] == ["Monitoring Metrics Publisher"]
    held = arm(f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/permissions", **API).json()
    assert held == {"value": [{"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []}]}
    assert arm(f"{TAILSPIN_SUB}/providers/Microsoft.Authorization/permissions", tenant=demo.TAILSPIN,
               **API).json() == {"value": []}


@pytest.mark.parametrize("path, params, status, code", [
    (f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleAssignments", {}, 400, "MissingApiVersionParameter"),
    (f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleAssignments", {"api-version": "2022-12-01"}, 400,
     "InvalidApiVersionParameter"),
    (f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleAssignments", {**API, "$filter": "roleName eq 'x'"}, 400,
     "UnsupportedQuery"),
    (f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleAssignments",
     {**API, "$filter": "assignedTo('a') and assignedTo('b')"}, 400, "UnsupportedQuery"),
    (f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleDefinitions", {**API, "$filter": "nonsense"}, 400,
     "UnsupportedQuery"),
    (f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/roleDefinitions/00000000-0000-4000-8000-000000000000", API,
     404, "RoleDefinitionDoesNotExist"),
    (f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/lockedThings", API, 400, "InvalidResourceType"),
    ("/subscriptions/e9999999-0000-4000-8000-000000000009/providers/Microsoft.Authorization/roleAssignments", API,
     404, "SubscriptionNotFound"),
    (f"{TAILSPIN_SUB}/providers/Microsoft.Authorization/roleAssignments", API, 401,
     "InvalidAuthenticationTokenTenant"),  # a Fabrikam token on Tailspin's subscription
])
def test_malformed_requests_get_arms_codes(arm, path, params, status, code):
    assert _code(arm(path, **params), status) == code


def test_reading_assignments_needs_a_role_that_may(arm):
    refused = arm(f"{TAILSPIN_SUB}/providers/Microsoft.Authorization/roleAssignments", tenant=demo.TAILSPIN, **API)
    assert _code(refused, 403) == "AuthorizationFailed"
    assert "'Microsoft.Authorization/roleAssignments/read'" in refused.json()["error"]["message"]


def test_without_a_token_arm_refuses_with_a_challenge(arm):
    refused = arm(f"{FABRIKAM_SUB}/providers/Microsoft.Authorization/permissions", headers={}, **API)
    assert _code(refused, 401) == "AuthenticationFailed" and "invalid_token" in refused.headers["WWW-Authenticate"]


def test_the_role_control_assigns_on_every_subscription_a_scope_or_one(emulator, arm):
    """roles/add with only tenant and app_id used to fail with KeyError('subscription_id')."""
    control = emulator.control
    control.add_role(tenant=demo.TAILSPIN, app_id=demo.APP_ID)
    assert arm("/subscriptions", tenant=demo.TAILSPIN, **{"api-version": "2022-12-01"}).json()["count"]["value"] == 1
    control.add_role(tenant="tailspin.example", app_id=demo.APP_ID, role="Monitoring Metrics Publisher",
                     scope=f"{TAILSPIN_SUB}/resourceGroups/rg")
    roles = {(r["role"], r["scope"]) for r in emulator.world.data["role_assignments"] if r["tenant"] == demo.TAILSPIN}
    assert roles == {("Reader", TAILSPIN_SUB), ("Monitoring Metrics Publisher", f"{TAILSPIN_SUB}/resourceGroups/rg")}
    control.remove_roles(tenant=demo.TAILSPIN, app_id=demo.APP_ID, role="Reader")
    assert [r["role"] for r in emulator.world.data["role_assignments"] if r["tenant"] == demo.TAILSPIN] == [
        "Monitoring Metrics Publisher"]


@pytest.mark.parametrize("body, status", [
    ({"tenant": demo.WOODGROVE, "app_id": demo.APP_ID}, 409),  # no consent there
    ({"tenant": demo.TAILSPIN, "app_id": demo.APP_ID, "scope": "subscriptions/x"}, 400),
    ({"tenant": demo.USGOV, "app_id": demo.APP_ID}, 409),
    ({"tenant": "nowhere.example", "app_id": demo.APP_ID}, 404),
])
def test_the_role_control_refuses_clearly(emulator, emulator_http, body, status):
    answer = emulator_http.post(f"{emulator.base_url}/_emulator/roles/add", json=body)
    assert answer.status_code == status and answer.json()["error"]
    with pytest.raises(requests.HTTPError):
        emulator.control.add_role(**{k: v for k, v in body.items() if k != "scope"}, scope=body.get("scope"))


def test_consent_applies_the_worlds_consent_grants(emulator, emulator_http):
    """The demo world's Northwind admin assigns Reader while consenting (consent_grants); Woodgrove's does not."""
    world = emulator.world
    assert not [r for r in world.data["role_assignments"] if r["tenant"] in (demo.NORTHWIND, demo.WOODGROVE)]
    for tenant in (demo.NORTHWIND, demo.WOODGROVE):
        _decide(emulator_http, emulator, tenant, "accept")
    principal = world.service_principal(demo.NORTHWIND, demo.APP_ID)["object_id"]
    assert [r for r in world.data["role_assignments"] if r["tenant"] in (demo.NORTHWIND, demo.WOODGROVE)] == [
        {"tenant": demo.NORTHWIND, "principal": principal, "role": "Reader",
         "scope": f"/subscriptions/{demo.NORTHWIND_SUBSCRIPTION}"}]
