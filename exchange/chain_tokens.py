"""The token hops of the chain, through MSAL: the managed identity's token (IMDS) as the assertion of a confidential
client per app and tenant, and one client-credentials exchange recorded as a step. Tokens stay in local variables:
only their non-secret claims leave (ChainStep.claims)."""
from dataclasses import dataclass

from exchange import entra, imds
from exchange.chain_steps import ChainResult, ChainStep, Step, on_wire, redact, step_failed
from exchange.clouds import CLOUDS
from exchange.faults import HOME_TOKEN, PERMANENT, classify
from exchange.http import wire

KEPT_ERROR_FIELDS = ("error", "error_codes")
ID_FIELD_MAX = 64  # trace and correlation ids as stored


def identity_token(*, identity, audience: str) -> dict:
    """The workers' managed-identity token for `audience` (the FIC's), as IMDS answered it through MSAL."""
    return imds.mi_token(client_id=str(identity.client_id), resource=audience)


def _assertion(identity, audience: str):
    # MSAL calls this only when a request goes on the wire; MSAL's MI client serves it from cache while fresh.
    return lambda: identity_token(identity=identity, audience=audience)["access_token"]


def _client_for(*, app, identity, tenant_id: str, login_base: str, audience: str):
    return entra.confidential_client(login_base=login_base, tenant_id=tenant_id, client_id=str(app.client_id),
                                     assertion=_assertion(identity, audience))


def app_token(*, app, identity, tenant_id: str, scope: str, audience: str | None = None) -> dict:
    """An app-only token for `scope` in `tenant_id` (e.g. Graph in the home tenant), as an MSAL result dict."""
    cloud = CLOUDS[app.cloud]
    try:
        client = _client_for(app=app, identity=identity, tenant_id=tenant_id, login_base=cloud.login_base,
                             audience=audience or app.exchange_audience)
        return entra.client_credentials(client, scope).result
    except imds.ImdsError as exc:
        return {"error": f"imds_{exc.code}", "error_description": exc.message, "error_codes": []}
    except Exception as exc:  # classified: the caller sees "unavailable" for anything worth another try
        failure = classify(HOME_TOKEN, exc=exc)
        error = "unavailable" if failure.kind != PERMANENT else failure.code
        return {"error": error, "error_description": f"{type(exc).__name__}: {exc}"[:500], "error_codes": []}


@dataclass(frozen=True)
class TokenHop:
    """What one exchange (home or customer tenant) needs."""
    app: object
    identity: object
    cloud: str
    scope: str
    retrying: bool


def _build_client(steps, step, hop: TokenHop, target: str, discovery: str, record):
    """The MSAL client for `target`: (client, None), or (None, the failure). MSAL reads the tenant's metadata when a
    client is built, and raises for any 4xx (ValueError) or 5xx (MsalServiceError) of it: classify by the status on
    the wire, never by what MSAL raised."""
    before = record.requests
    try:
        return _client_for(app=hop.app, identity=hop.identity, tenant_id=target,
                           login_base=CLOUDS[hop.cloud].login_base, audience=hop.app.exchange_audience), None
    except Exception as exc:  # noqa: BLE001
        return None, step_failed(steps, step, classify(discovery, exc=exc, **on_wire(record, before)))


def _request_token(steps, step, client, hop: TokenHop, token_endpoint: str, record):
    """Client credentials with the MI token as assertion: (the attempt, None) or (None, the failure)."""
    before = record.requests
    try:
        return entra.client_credentials(client, hop.scope), None
    except imds.ImdsError as exc:  # raised from the assertion callable when the MI token had to be renewed
        return None, step_failed(steps, step, exc.failure)
    except Exception as exc:  # noqa: BLE001 - MSAL raises on a 5xx (on the wire, or replayed from its cache)
        seen = on_wire(record, before, client.authority.token_endpoint)
        if not seen:
            status, retry_after = entra.replayed_answer(client) or (None, None)
            seen = {"status": status, "retry_after": retry_after, "replayed": True}
        return None, step_failed(steps, step, classify(token_endpoint, exc=exc, **seen))


def _token_answer(steps, step, attempt, token_endpoint: str) -> tuple[ChainResult | None, str | None]:
    """What the token endpoint answered: (the failure, None), or (None, the access token)."""
    result = attempt.result
    step.http_status = attempt.http_status
    if "access_token" not in result:
        step.trace_id = str(result.get("trace_id", ""))[:ID_FIELD_MAX]
        step.correlation_id = str(result.get("correlation_id", ""))[:ID_FIELD_MAX]
        if attempt.replayed:
            step.detail["replayed"] = True
        failure = classify(token_endpoint, status=attempt.http_status, error=result,
                           retry_after=attempt.retry_after, replayed=attempt.replayed)
        return step_failed(steps, step, failure, {k: result.get(k) for k in KEPT_ERROR_FIELDS if k in result}), None
    step.ok = True
    step.claims = redact(result["access_token"])
    step.detail["expires_in"] = result.get("expires_in")
    return None, result["access_token"]


def token_hop(steps: list[ChainStep], name: str, target: str, hop: TokenHop, *,
              endpoints: tuple[str, str]) -> tuple[ChainResult | None, str | None]:
    """Client credentials in `target`, the MI token as assertion, recorded as the step `name`: (the failure, None),
    or (None, the access token). `endpoints`: the (discovery, token) endpoints its answers count for."""
    discovery, token = endpoints
    record = wire()
    with Step(steps, name) as step:
        step.detail = {"tenant": target, "scope": hop.scope}
        if hop.retrying:
            entra.forget_throttle(target)
        client, failed = _build_client(steps, step, hop, target, discovery, record)
        if failed:
            return failed, None
        attempt, failed = _request_token(steps, step, client, hop, token, record)
        if failed:
            return failed, None
        return _token_answer(steps, step, attempt, token)
