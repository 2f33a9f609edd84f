"""Azure Resource Manager: `GET /subscriptions` (only those where the caller holds a role) and `GET` of one
subscription or resource under it, with ARM's documented refusals.

- 401 with `WWW-Authenticate: Bearer authorization_uri=..., error="invalid_token", error_description=...`:
  `AuthenticationFailed` (no `Authorization` header, or not `Bearer <token>`), `InvalidAuthenticationToken` (not a
  token Entra signed), `ExpiredAuthenticationToken`, `InvalidAuthenticationTokenAudience` (a token for another
  resource), `InvalidAuthenticationTokenTenant` (a subscription of another tenant than the token's).
- 400 `MissingApiVersionParameter` / `InvalidApiVersionParameter` (checked after authentication, as ARM does).
- 404 `SubscriptionNotFound`, 403 `AuthorizationFailed` (no role on the scope).
- `{scope}/providers/Microsoft.Authorization/...` (role assignments, role definitions, permissions): `rbac.py`, with
  400 `InvalidApiVersionParameter` (Microsoft.Authorization's versions), `UnsupportedQuery`, `InvalidResourceType`.
"""
import re
import uuid
from datetime import UTC, datetime

from emulator import rbac
from emulator.protocol import (
    BAD_FORMAT,
    EXPIRED,
    INVALID,
    NO_HEADER,
    Response,
    read_bearer,
)
from emulator.world import ARM_RESOURCES

# Microsoft.Resources/subscriptions; a resource below a subscription takes any well-formed version (its provider's
# versions are not modelled).
SUBSCRIPTION_API_VERSIONS = (
    "2014-04-01", "2015-01-01", "2015-11-01", "2016-01-01", "2016-06-01", "2016-09-01", "2017-05-10", "2017-08-01",
    "2018-02-01", "2018-05-01", "2019-03-01", "2019-05-01", "2019-06-01", "2019-07-01", "2019-08-01", "2019-10-01",
    "2019-11-01", "2020-01-01", "2020-06-01", "2020-08-01", "2020-10-01", "2021-01-01", "2021-04-01", "2022-01-01",
    "2022-09-01", "2022-12-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01")
API_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)")
AUDIENCES = ("https://management.core.windows.net/", "https://management.core.windows.net",
             "https://management.azure.com/", "https://management.azure.com")


def _answer(status: int, body: dict, **headers) -> Response:
    return Response(status, body, headers={"x-ms-correlation-request-id": str(uuid.uuid4()), **headers})


def _error(status: int, code: str, message: str, **headers) -> Response:
    return _answer(status, {"error": {"code": code, "message": message}}, **headers)


def _unauthenticated(code: str, message: str, why: str, authority="https://login.windows.net/") -> Response:
    challenge = f'Bearer authorization_uri="{authority}", error="invalid_token", error_description="{why}"'
    return _error(401, code, message, **{"WWW-Authenticate": challenge})


def _stamp(seconds: float) -> str:
    return f"{datetime.fromtimestamp(seconds, UTC):%m/%d/%Y %H:%M:%S}"


def _authentication_problem(emu, claims: dict | None, reason: str) -> Response:
    if reason == NO_HEADER:
        return _unauthenticated("AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                                "missing.", "The authentication failed because of missing 'Authorization' header.")
    if reason == BAD_FORMAT:
        return _unauthenticated("AuthenticationFailed", "Authentication failed. The 'Authorization' header is "
                                "provided in an invalid format.", "The access token is missing or invalid.")
    if reason == INVALID:
        return _unauthenticated("InvalidAuthenticationToken", "The access token is invalid.",
                                "The access token is missing or invalid.")
    if reason == EXPIRED:
        return _unauthenticated("ExpiredAuthenticationToken", f"The access token expiry UTC time "
                                f"'{_stamp(claims.get('exp', 0))}' is earlier than current UTC time "
                                f"'{_stamp(emu.now())}'.", "The access token expiry UTC time is earlier than current "
                                "UTC time.")
    # WRONG_AUDIENCE, the only reason left
    allowed = ",".join(f"'{a}'" for a in AUDIENCES)
    return _unauthenticated("InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong "
                            f"audience or resource '{claims.get('aud', '')}'. It should exactly match with one of "
                            f"the allowed audiences {allowed}.", "The access token audience is invalid.")


def _api_version_problem(path: str, query: dict) -> Response | None:
    version = query.get("api-version")
    if not version:
        return _error(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is "
                      "required for all requests.")
    subscriptions = path.count("/") <= 2
    if (subscriptions and version not in SUBSCRIPTION_API_VERSIONS) or not API_VERSION.match(version):
        supported = ",".join(reversed(SUBSCRIPTION_API_VERSIONS))
        return _error(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid. The supported "
                      f"versions are '{supported}'.")
    return None


def _list_subscriptions(world, tenant_id: str, principal: str) -> Response:
    value = [{"id": f"/subscriptions/{s['subscription_id']}", "subscriptionId": s["subscription_id"],
              "tenantId": tenant_id, "displayName": s["display_name"], "state": "Enabled",
              "authorizationSource": "RoleBased"} for s in world.subscriptions_for(tenant_id, principal)]
    return _answer(200, {"value": value, "count": {"type": "Total", "value": len(value)}})


def _subscription_problem(world, claims: dict, resource_id: str) -> tuple[dict | None, Response | None]:
    """The subscription `resource_id` lies in, or ARM's refusal: another tenant's (401), unknown (404)."""
    tenant_id = claims["tid"]
    match = SUBSCRIPTION.match(resource_id)
    wanted = match.group(1).lower() if match else ""
    sub = next((s for s in world.data["subscriptions"] if s["subscription_id"].lower() == wanted), None)
    if sub is not None and sub["tenant"] != tenant_id:
        return None, _unauthenticated(
            "InvalidAuthenticationTokenTenant", f"The access token is from the wrong issuer '{claims.get('iss', '')}'. "
            f"It must match the tenant 'https://sts.windows.net/{sub['tenant']}/' associated with this subscription. "
            f"Please use the authority (URL) 'https://login.windows.net/{sub['tenant']}' to get the token.",
            "The access token is from the wrong issuer. It must match the tenant associated with this subscription. "
            "Please use correct authority to get the token.", authority=f"https://login.windows.net/{sub['tenant']}")
    if sub is None:
        return None, _error(404, "SubscriptionNotFound", f"The subscription '{match.group(1) if match else ''}' "
                            "could not be found.")
    return sub, None


def _refused(claims: dict, action: str, scope: str) -> Response:
    return _error(403, "AuthorizationFailed", f"The client '{claims.get('appid')}' with object id '{claims['oid']}' "
                  f"does not have authorization to perform action '{action}' over scope '{scope}' or the scope is "
                  "invalid. If access was recently granted, please refresh your credentials.")


def _get_resource(world, claims: dict, resource_id: str) -> Response:
    sub, problem = _subscription_problem(world, claims, resource_id)
    if problem:
        return problem
    if not world.roles_on(claims["tid"], claims["oid"], resource_id):
        return _refused(claims, "Microsoft.Resources/subscriptions/read", resource_id)
    name, whole = resource_id.rsplit("/", 1)[-1], resource_id.count("/") == 2
    return _answer(200, {"id": resource_id, "name": name, "subscriptionId": sub["subscription_id"],
                         "displayName": sub["display_name"] if whole else name,
                         "type": "Microsoft.Resources/subscriptions" if whole else "Microsoft.Resources/resource"})


def _role_assignments(world, claims: dict, scope: str, query: dict) -> Response:
    parsed = rbac.parse_filter(query.get("$filter", ""))
    if parsed is None:
        return _error(400, "UnsupportedQuery", f"The filter '{query['$filter']}' is not supported. Supported filters "
                      "are either 'atScope()' or 'principalId eq '{value}' or assignedTo('{value}')'.")
    if not rbac.allowed(world, claims["tid"], claims["oid"], scope, rbac.READ_ASSIGNMENTS):
        return _refused(claims, rbac.READ_ASSIGNMENTS, scope)
    at_scope, principal = parsed
    found = rbac.assignments(world, claims["tid"], scope, principal)
    if not at_scope:  # without atScope() ARM lists the assignments below the scope too
        found += [r for r in world.data["role_assignments"] if r["tenant"] == claims["tid"] and r not in found
                  and rbac.inherited(r["scope"], scope) and (principal is None or r["principal"] == principal)]
    return _answer(200, {"value": [rbac.assignment_body(world, r) for r in found]})


def _role_definitions(world, scope: str, rest: str, query: dict) -> Response:
    if rest:
        role = rbac.definition(world, guid=rest.strip("/"))
        if role is None:
            return _error(404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID "
                          f"'{rest.strip('/')}' does not exist.")
        return _answer(200, rbac.definition_body(role, scope))
    wanted = query.get("$filter", "")
    match = rbac.ROLE_NAME.match(wanted)
    if wanted and not match:
        return _error(400, "UnsupportedQuery", f"The filter '{wanted}' is not supported. Supported filters are "
                      "'roleName eq '{value}'' or 'type eq 'BuiltInRole|CustomRole''.")
    roles = [r for r in rbac.definitions(world) if not match or r["name"].lower() == match.group(1).lower()]
    return _answer(200, {"value": [rbac.definition_body(r, scope) for r in roles]})


def _authorization(world, claims: dict, path: str, query: dict) -> Response:
    """`{scope}/providers/Microsoft.Authorization/...` (emulator/rbac.py)."""
    scope, collection, rest = rbac.split(path)
    version = query.get("api-version")
    if version not in rbac.API_VERSIONS:
        return _error(400, "InvalidApiVersionParameter", f"The api-version '{version}' is invalid. The supported "
                      f"versions are '{','.join(reversed(rbac.API_VERSIONS))}'.")
    if scope != "/":
        _sub, problem = _subscription_problem(world, claims, scope)
        if problem:
            return problem
    if collection == "roleassignments" and not rest:
        return _role_assignments(world, claims, scope, query)
    if collection == "roledefinitions":
        return _role_definitions(world, scope, rest, query)
    if collection == "permissions" and not rest:
        return _answer(200, {"value": rbac.permissions(world, claims["tid"], claims["oid"], scope)})
    return _error(400, "InvalidResourceType", f"The resource type '{collection}' could not be found in the namespace "
                  f"'Microsoft.Authorization' for api version '{version}'.")


def get(emu, path: str, query: dict, headers) -> Response:
    claims, reason = read_bearer(emu, headers, ARM_RESOURCES)
    if reason:
        return _authentication_problem(emu, claims, reason)
    resource_id = path.rstrip("/")
    if not query.get("api-version"):
        return _api_version_problem(resource_id, query)
    if rbac.split(resource_id):
        with emu.world.lock:
            return _authorization(emu.world, claims, resource_id, query)
    problem = _api_version_problem(resource_id, query)
    if problem:
        return problem
    with emu.world.lock:
        if resource_id == "/subscriptions":
            return _list_subscriptions(emu.world, claims["tid"], claims["oid"])
        return _get_resource(emu.world, claims, resource_id)
