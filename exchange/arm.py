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
