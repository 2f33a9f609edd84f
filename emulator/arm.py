"""Azure Resource Manager: `GET /subscriptions` (only those where the caller holds a role) and `GET` of one
subscription or resource under it, with ARM's documented refusals.

- 401 with `WWW-Authenticate: Bearer authorization_uri=..., error="invalid_token", error_description=...`:
  `AuthenticationFailed` (no `Authorization` header, or not `Bearer <token>`), `InvalidAuthenticationToken` (not a
  token Entra signed), `ExpiredAuthenticationToken`, `InvalidAuthenticationTokenAudience` (a token for another
  resource), `InvalidAuthenticationTokenTenant` (a subscription of another tenant than the token's).
- 400 `MissingApiVersionParameter` / `InvalidApiVersionParameter` (checked after authentication, as ARM does).
- 404 `SubscriptionNotFound`, 403 `AuthorizationFailed` (no role on the scope).
"""
import re
import uuid
from datetime import UTC, datetime

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


def _get_resource(world, claims: dict, resource_id: str) -> Response:
    tenant_id, principal = claims["tid"], claims["oid"]
    match = SUBSCRIPTION.match(resource_id)
    wanted = match.group(1).lower() if match else ""
    sub = next((s for s in world.data["subscriptions"] if s["subscription_id"].lower() == wanted), None)
    if sub is not None and sub["tenant"] != tenant_id:
        return _unauthenticated("InvalidAuthenticationTokenTenant", f"The access token is from the wrong issuer "
                                f"'{claims.get('iss', '')}'. It must match the tenant 'https://sts.windows.net/"
                                f"{sub['tenant']}/' associated with this subscription. Please use the authority (URL) "
                                f"'https://login.windows.net/{sub['tenant']}' to get the token.",
                                "The access token is from the wrong issuer. It must match the tenant associated "
                                "with this subscription. Please use correct authority to get the token.",
                                authority=f"https://login.windows.net/{sub['tenant']}")
    if sub is None:
        return _error(404, "SubscriptionNotFound", f"The subscription '{match.group(1) if match else ''}' could not "
                      "be found.")
    if not world.roles_on(tenant_id, principal, resource_id):
        return _error(403, "AuthorizationFailed", f"The client '{claims.get('appid')}' with object id '{principal}' "
                      "does not have authorization to perform action 'Microsoft.Resources/subscriptions/read' over "
                      f"scope '{resource_id}' or the scope is invalid. If access was recently granted, please "
                      "refresh your credentials.")
    name, whole = resource_id.rsplit("/", 1)[-1], resource_id.count("/") == 2
    return _answer(200, {"id": resource_id, "name": name, "subscriptionId": sub["subscription_id"],
                         "displayName": sub["display_name"] if whole else name,
                         "type": "Microsoft.Resources/subscriptions" if whole else "Microsoft.Resources/resource"})


def get(emu, path: str, query: dict, headers) -> Response:
    claims, reason = read_bearer(emu, headers, ARM_RESOURCES)
    if reason:
        return _authentication_problem(emu, claims, reason)
    resource_id = path.rstrip("/")
    problem = _api_version_problem(resource_id, query)
    if problem:
        return problem
    with emu.world.lock:
        if resource_id == "/subscriptions":
            return _list_subscriptions(emu.world, claims["tid"], claims["oid"])
        return _get_resource(emu.world, claims, resource_id)
