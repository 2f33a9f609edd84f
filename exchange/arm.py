"""Azure Resource Manager: the probe that shows the consented app holds a role in the customer tenant."""
from dataclasses import dataclass, field

from exchange.faults import retry_after_seconds
from exchange.http import outbound_session

SUBSCRIPTIONS_API = "2022-12-01"
RESOURCES_API = "2021-04-01"


@dataclass
class ProbeResult:
    http_status: int | None
    subscriptions: list[dict] = field(default_factory=list)
    resource: dict | None = None
    error_code: str = ""
    message: str = ""
    retry_after: float | None = None
    correlation_id: str = ""


def probe(*, arm_base: str, access_token: str, resource_id: str = "") -> ProbeResult:
    """GET /subscriptions (or one resource id). Raises http.NoAnswer on network failure."""
    if resource_id:
        api = SUBSCRIPTIONS_API if resource_id.strip("/").count("/") == 1 else RESOURCES_API
        url = f"{arm_base}/{resource_id.strip('/')}"
    else:
        api, url = SUBSCRIPTIONS_API, f"{arm_base}/subscriptions"
    response = outbound_session().get(url, params={"api-version": api},
                                   headers={"Authorization": f"Bearer {access_token}"})
    result = ProbeResult(http_status=response.status_code,
                         correlation_id=response.headers.get("x-ms-correlation-request-id", ""))
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code == 200:
        if resource_id:
            result.resource = {"id": body.get("id", resource_id), "name": body.get("name", ""),
                               "type": body.get("type", "")}
        else:
            result.subscriptions = [
                {"id": s.get("subscriptionId", ""), "name": s.get("displayName", ""), "state": s.get("state", "")}
                for s in body.get("value", [])
            ]
        return result
    error = body.get("error", {}) if isinstance(body, dict) else {}
    result.error_code = str(error.get("code", f"HTTP{response.status_code}"))
    result.message = str(error.get("message", ""))[:1000]
    result.retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return result


# --- Microsoft.Authorization: what the app's service principal holds on a scope ------------------------------------
AUTHORIZATION_API = "2022-04-01"
AUTHORIZATION = "/providers/Microsoft.Authorization"


@dataclass
class ArmAnswer:
    http_status: int
    body: dict
    error_code: str = ""
    message: str = ""
    retry_after: float | None = None
    correlation_id: str = ""

    @property
    def value(self) -> list:
        found = self.body.get("value", []) if self.http_status == 200 else []
        return found if isinstance(found, list) else []


def _get(*, arm_base: str, access_token: str, path: str, params: dict) -> ArmAnswer:
    """GET an ARM path (Microsoft.Authorization's api-version). Raises http.NoAnswer on network failure."""
    response = outbound_session().get(f"{arm_base}{path}", params={"api-version": AUTHORIZATION_API, **params},
                                      headers={"Authorization": f"Bearer {access_token}"})
    try:
        body = response.json()
    except ValueError:
        body = {}
    body = body if isinstance(body, dict) else {}
    answer = ArmAnswer(response.status_code, body,
                       correlation_id=response.headers.get("x-ms-correlation-request-id", ""))
    if response.status_code != 200:
        error = body.get("error", {}) if isinstance(body.get("error"), dict) else {}
        answer.error_code = str(error.get("code", f"HTTP{response.status_code}"))
        answer.message = str(error.get("message", ""))[:1000]
        answer.retry_after = retry_after_seconds(response.headers.get("Retry-After"))
    return answer


def _scoped(scope: str, rest: str) -> str:
    return f"{scope.rstrip('/')}{AUTHORIZATION}{rest}"


def role_assignments(*, arm_base: str, access_token: str, scope: str, principal_id: str) -> ArmAnswer:
    """The principal's role assignments at `scope` or above it (inherited from a parent scope count)."""
    return _get(arm_base=arm_base, access_token=access_token, path=_scoped(scope, "/roleAssignments"),
                params={"$filter": f"atScope() and assignedTo('{principal_id}')"})


def role_definition(*, arm_base: str, access_token: str, definition_id: str) -> ArmAnswer:
    """One role definition by its full id (`…/providers/Microsoft.Authorization/roleDefinitions/{guid}`)."""
    return _get(arm_base=arm_base, access_token=access_token, path=definition_id, params={})


def role_definitions_named(*, arm_base: str, access_token: str, scope: str, role: str) -> ArmAnswer:
    return _get(arm_base=arm_base, access_token=access_token, path=_scoped(scope, "/roleDefinitions"),
                params={"$filter": f"roleName eq '{role}'"})


def permissions(*, arm_base: str, access_token: str, scope: str) -> ArmAnswer:
    """The caller's own permissions on `scope` (one entry per role it holds there); needs no role to read."""
    return _get(arm_base=arm_base, access_token=access_token, path=_scoped(scope, "/permissions"), params={})
