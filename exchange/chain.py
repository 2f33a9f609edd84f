"""The exchange chain for one tenant: IMDS → (home tenant) → customer tenant → ARM probe, every hop recorded.

Tokens stay in local variables of this module: only their non-secret claims leave it (ChainStep.claims).
"""
import base64
import binascii
import json
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime

from msal.exceptions import MsalServiceError

from exchange import arm, entra, imds
from exchange.clouds import CLOUDS
from exchange.http import NoAnswer, wire

KEPT_CLAIMS = ("iss", "aud", "tid", "oid", "sub", "appid", "azp", "roles", "exp", "idtyp", "xms_mirid")


def redact(token: str) -> dict:
    """The non-secret claims of a token (no signature check: we only describe what we were given).

    The payload is read directly: PyJWT's unverified decode costs ten times as much, twice per tenant test."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    if not isinstance(claims, dict):
        return {}
    return {k: claims[k] for k in KEPT_CLAIMS if k in claims}


@dataclass
class ChainStep:
    name: str
    started_at: datetime
    duration_ms: int = 0
    ok: bool = False
    http_status: int | None = None
    error_code: str = ""  # the diagnosis code: AADSTS70021, IMDS:identity_not_found, AuthorizationFailed...
    error: str = ""
    message: str = ""
    trace_id: str = ""
    correlation_id: str = ""
    claims: dict = field(default_factory=dict)
    detail: dict = field(default_factory=dict)
    transient: bool = False
    retry_after: float | None = None


@dataclass
class ChainResult:
    steps: list[ChainStep]
    code: str  # "verified", "no_role", or the failing step's error_code
    transient: bool = False
    retry_after: float | None = None
    raw_error: dict = field(default_factory=dict)


class _Step:
    def __init__(self, steps: list[ChainStep], name: str):
        self.step = ChainStep(name=name, started_at=datetime.now(UTC))
        self._t0 = time.perf_counter()
        steps.append(self.step)

    def __enter__(self):
        return self.step

    def __exit__(self, *exc):
        self.step.duration_ms = int((time.perf_counter() - self._t0) * 1000)
        return False


def _token_error(step: ChainStep, attempt: entra.TokenAttempt) -> None:
    result = attempt.result
    codes = result.get("error_codes") or []
    step.http_status = attempt.http_status
    step.error = str(result.get("error", ""))[:64]
    step.message = str(result.get("error_description", ""))[:2000]
    step.trace_id = str(result.get("trace_id", ""))[:64]
    step.correlation_id = str(result.get("correlation_id", ""))[:64]
    status = attempt.http_status or 0
    step.transient = status == 429 or status >= 500
    step.retry_after = attempt.retry_after
    step.error_code = f"AADSTS{codes[0]}" if codes else ("transient" if step.transient else step.error or "unknown")


def mi_token(*, identity, audience: str) -> dict:
    return imds.mi_token(client_id=str(identity.client_id), resource=audience)


def _assertion(identity, audience: str):
    # MSAL calls this only when a request goes on the wire; MSAL's MI client serves it from cache while fresh.
    return lambda: mi_token(identity=identity, audience=audience)["access_token"]


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
    except (ValueError, NoAnswer, MsalServiceError) as exc:
        return {"error": "unavailable", "error_description": f"{type(exc).__name__}: {exc}"[:500], "error_codes": []}


def _exchange(steps: list[ChainStep], name: str, target: str, *, app, identity, cloud: str, scope: str,
              retrying: bool) -> tuple[ChainResult | None, str | None]:
    """Client credentials in `target`, the MI token as assertion: (the failure, None), or (None, the access token)."""
    with _Step(steps, name) as step:
        step.detail = {"tenant": target, "scope": scope}
        if retrying:
            entra.forget_throttle(target)
        try:
            client = _client_for(app=app, identity=identity, tenant_id=target, login_base=CLOUDS[cloud].login_base,
                                 audience=app.exchange_audience)
        except (NoAnswer, MsalServiceError) as exc:  # MSAL reads the tenant's metadata when a client is built
            record = wire()
            step.error_code, step.transient = "transient", True
            if isinstance(exc, NoAnswer):
                step.message = f"No answer from Microsoft Entra ID for the tenant's metadata: {exc}."
            else:  # MSAL raises on HTTP 5xx
                step.http_status, step.retry_after = record.status, record.retry_after
                step.message = f"Microsoft Entra ID answered HTTP {record.status} for the tenant's metadata."
            return ChainResult(steps, "transient", True, step.retry_after), None
        except ValueError:
            # MSAL could not read the tenant's metadata: ask discovery why (unknown tenant, wrong cloud...).
            try:
                entra.tenant_discover(cloud_key=cloud, domain_or_id=target)
                step.error_code, step.message = "unknown", "MSAL could not read the tenant's metadata."
            except entra.TenantNotFound as exc:
                step.error_code, step.error, step.message = "AADSTS90002", "invalid_tenant", str(exc)
            except entra.EntraUnavailable as exc:
                step.error_code, step.message, step.transient = "transient", str(exc), True
            return ChainResult(steps, step.error_code, step.transient, None, {"error": step.error}), None
        try:
            attempt = entra.client_credentials(client, scope)
        except NoAnswer as exc:
            step.error_code, step.transient = "transient", True
            step.message = f"No answer from the token endpoint: {exc}."
            return ChainResult(steps, "transient", True), None
        except MsalServiceError:  # MSAL raises on HTTP 5xx instead of returning the error
            record = wire()
            step.http_status, step.retry_after = record.status, record.retry_after
            step.error_code, step.transient = "transient", True
            step.message = f"The token endpoint answered HTTP {record.status}."
            return ChainResult(steps, "transient", True, record.retry_after), None
        except imds.ImdsError as exc:  # raised from the assertion callable when the MI token had to be renewed
            step.error_code = "transient" if exc.transient else f"IMDS:{exc.code}"
            step.transient, step.message = exc.transient, exc.message[:2000]
            return ChainResult(steps, step.error_code, exc.transient, exc.retry_after), None
        step.http_status = attempt.http_status
        if "access_token" not in attempt.result:
            _token_error(step, attempt)
            raw = {k: attempt.result.get(k) for k in ("error", "error_codes") if k in attempt.result}
            return ChainResult(steps, step.error_code, step.transient, step.retry_after, raw), None
        step.ok = True
        step.claims = redact(attempt.result["access_token"])
        step.detail["expires_in"] = attempt.result.get("expires_in")
        return None, attempt.result["access_token"]


# Home-tenant proofs of the FIC, per (app, identity): a sweep proves the FIC once per worker process and window, not
# once per tenant (the customer-tenant exchange that follows proves it again anyway).
HOME_PROOF_SECONDS = 300
_home_proofs: dict[tuple[int, int], tuple[float, dict]] = {}
_home_locks: dict[tuple[int, int], threading.Lock] = {}


def run(*, app, identity, tenant_id: str, tenant_cloud: str, retrying: bool = False,
        reuse_home_proof: bool = False) -> ChainResult:
    """Run the chain once. Never raises for a failure of Microsoft's side: it becomes a failed step."""
    steps: list[ChainStep] = []
    audience = app.exchange_audience

    # 1. Managed-identity token from IMDS (cached by MSAL while fresh: one IMDS call per worker process).
    with _Step(steps, "imds") as step:
        try:
            result = mi_token(identity=identity, audience=audience)
        except imds.ImdsError as exc:
            step.http_status, step.message = exc.http_status, exc.message[:2000]
            step.error = exc.code[:64]
            step.transient, step.retry_after = exc.transient, exc.retry_after
            known = {"invalid_request": "IMDS:identity_not_found", "arc": "IMDS:arc"}
            step.error_code = "transient" if exc.transient else known.get(exc.code, f"IMDS:{exc.code}")
            return ChainResult(steps, step.error_code, exc.transient, exc.retry_after,
                               {"error": exc.code, "error_description": exc.message[:500]})
        step.ok, step.http_status = True, result.get("_http_status")
        step.claims = redact(result["access_token"])
        step.detail = {"source": result.get("token_source", ""), "resource": audience}
        del result

    # 2. Optional: the same exchange in the home tenant proves the FIC itself, apart from consent.
    scope = CLOUDS[tenant_cloud].arm_scope
    exchange = {"app": app, "identity": identity, "cloud": tenant_cloud, "scope": scope, "retrying": retrying}
    if app.verify_home_token:
        home = str(app.home_tenant_id)
        key = (app.pk, identity.pk)
        # A sweep proves the FIC once per process and window: one thread proves it, the others wait for its proof.
        with _home_locks.setdefault(key, threading.Lock()) if reuse_home_proof else nullcontext():
            proof = _home_proofs.get(key) if reuse_home_proof else None
            if proof and proof[0] > time.monotonic():
                with _Step(steps, "home_token") as step:
                    step.ok, step.claims = True, proof[1]
                    step.detail = {"tenant": home, "scope": scope, "source": "proven earlier by this worker"}
            else:
                failed, _ = _exchange(steps, "home_token", home, **exchange)
                if failed:
                    return failed
                _home_proofs[key] = (time.monotonic() + HOME_PROOF_SECONDS, steps[-1].claims)

    # 3. The customer-tenant token.
    failed, access_token = _exchange(steps, "tenant_token", tenant_id, **exchange)
    if failed:
        return failed

    # 4. ARM probe: proves the role, not only the consent.
    with _Step(steps, "arm_probe") as step:
        try:
            probe = arm.probe(arm_base=CLOUDS[tenant_cloud].arm_base, access_token=access_token,
                              resource_id=app.probe_resource_id)
        except NoAnswer as exc:
            step.error_code, step.transient = "transient", True
            step.message = f"No answer from Azure Resource Manager: {exc}."
            return ChainResult(steps, "transient", True)
        finally:
            del access_token
        step.http_status, step.correlation_id = probe.http_status, probe.correlation_id[:64]
        step.detail = {"resource_id": app.probe_resource_id} if app.probe_resource_id else {}
        if probe.http_status == 200:
            if app.probe_resource_id:
                step.detail["resource"] = probe.resource
            else:
                step.detail["subscriptions"] = probe.subscriptions
                if not probe.subscriptions:
                    step.error_code = "no_role"
                    step.message = "ARM lists no subscription: the app holds no role in this tenant."
                    return ChainResult(steps, "no_role")
            step.ok = True
            return ChainResult(steps, "verified")
        step.error, step.message = probe.error_code[:64], probe.message
        step.transient = probe.http_status == 429 or (probe.http_status or 0) >= 500
        step.retry_after = probe.retry_after
        step.error_code = "transient" if step.transient else probe.error_code
        return ChainResult(steps, step.error_code, step.transient, probe.retry_after,
                           {"error": probe.error_code, "http_status": probe.http_status})


def reset_clients() -> None:
    """Forget every cached client, token and identity (tests that change the emulator's state between runs)."""
    from exchange.http import reset_sessions
    from exchange.selectors import forget_worker_identities

    imds.reset_clients()
    entra.reset_clients()
    _home_proofs.clear()
    forget_worker_identities()
    reset_sessions()
