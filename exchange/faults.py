"""What a failed hop of the chain means: transient (try again later), permanent (the tenant's or the setup's to fix)
or our own infrastructure's (never the tenant's fault). One rule, used by every hop and by tenant discovery.

Classify by what happened on the wire, never by whether a library raised (ENTRA_FACTS, "How the client libraries
behave"): MSAL raises on a token-endpoint 5xx and on any 4xx of a tenant's discovery document (429 included), and it
replays a throttled answer from its cache, with no HTTP response behind it, to every thread sharing the client.
"""
import email.utils
import time
from dataclasses import dataclass

import urllib3
from msal.exceptions import MsalServiceError

TRANSIENT, PERMANENT, INFRASTRUCTURE = "transient", "permanent", "infrastructure"

# Where a failure happened: the circuit of a hop (and, for discovery, whose metadata MSAL was reading).
IMDS, HOME_DISCOVERY, HOME_TOKEN = "imds", "home_discovery", "home_token"
TENANT_DISCOVERY, TENANT_TOKEN, ARM = "tenant_discovery", "tenant_token", "arm"
ENDPOINTS = (IMDS, HOME_DISCOVERY, HOME_TOKEN, TENANT_DISCOVERY, TENANT_TOKEN, ARM)
ENDPOINT_LABELS = {IMDS: "IMDS (the workers' managed identity)", HOME_DISCOVERY: "Entra ID metadata (home tenant)",
                   TENANT_DISCOVERY: "Entra ID metadata (customer tenants)",
                   HOME_TOKEN: "Entra ID token endpoint (home tenant)",
                   TENANT_TOKEN: "Entra ID token endpoint (customer tenants)", ARM: "Azure Resource Manager"}

# AADSTS codes Microsoft documents as worth retrying (reference-error-codes): 90033 MsodsServiceUnavailable ("a
# transient error has occurred"), 90055 TenantThrottlingThreshold, 90006 ExternalServerRetryableError. Every other
# code is permanent: retrying it gives the same answer (70021 while a new FIC propagates is the services' call).
TRANSIENT_AADSTS = frozenset({90033, 90055, 90006})
# OAuth error names that say "later" (RFC 6749 4.1.2.1); what Entra and IMDS put in a 429/503 body.
TRANSIENT_ERRORS = frozenset({"temporarily_unavailable", "server_error"})
# MSAL throttles a 429/5xx answer without Retry-After for 5 s (RetryAfterParser's default).
MSAL_REPLAY_SECONDS = 5.0

# What an error code means for IMDS (ENTRA_FACTS, IMDS): "Identity not found" is the unknown client id.
_IMDS_CODES = {"invalid_request": "IMDS:identity_not_found", "arc": "IMDS:arc"}

_NO_ANSWER = {
    IMDS: "IMDS did not answer: {why}.",
    HOME_DISCOVERY: "No answer from Microsoft Entra ID for the home tenant's metadata: {why}.",
    TENANT_DISCOVERY: "No answer from Microsoft Entra ID for the tenant's metadata: {why}.",
    HOME_TOKEN: "No answer from the token endpoint: {why}.",
    TENANT_TOKEN: "No answer from the token endpoint: {why}.",
    ARM: "No answer from Azure Resource Manager: {why}.",
}
_ANSWERED = {
    IMDS: "IMDS answered HTTP {status}.",
    HOME_DISCOVERY: "Microsoft Entra ID answered HTTP {status} for the home tenant's metadata.",
    TENANT_DISCOVERY: "Microsoft Entra ID answered HTTP {status} for the tenant's metadata.",
    HOME_TOKEN: "The token endpoint answered HTTP {status}.",
    TENANT_TOKEN: "The token endpoint answered HTTP {status}.",
    ARM: "Azure Resource Manager answered HTTP {status}.",
}


def _said(texts: dict, endpoint: str, **values) -> str:
    """The message for an endpoint (any other name, e.g. a caller's own: "{endpoint} answered ...")."""
    default = "No answer from {endpoint}: {why}." if "why" in values else "{endpoint} answered HTTP {status}."
    return texts.get(endpoint, default).format(endpoint=endpoint, **values)


class NoAnswer(Exception):
    """No HTTP answer: the connection failed, timed out or broke (what requests.RequestException meant before)."""


@dataclass(frozen=True)
class Failure:
    kind: str  # TRANSIENT | PERMANENT | INFRASTRUCTURE
    code: str  # the diagnosis code: "transient", "infrastructure", "AADSTS70021", "IMDS:identity_not_found"...
    endpoint: str  # one of ENDPOINTS
    retry_after: float | None = None  # seconds the server asked us to wait (transient only)
    http_status: int | None = None  # what was seen on the wire (for a replay: the answer MSAL replayed)
    error: str = ""  # the error's own name: invalid_request, AuthorizationFailed, temporarily_unavailable...
    message: str = ""

    @property
    def transient(self) -> bool:
        return self.kind == TRANSIENT


def transient_status(status: int | None, *, endpoint: str = "") -> bool:
    """THE rule for an HTTP status: 429 and 5xx are worth another try; for IMDS also 404 and 410 (IMDS updating,
    back within 70 s)."""
    if status is None:
        return False
    return status == 429 or status >= 500 or (endpoint == IMDS and status in (404, 410))


def retry_after_seconds(value, *, now: float | None = None) -> float | None:
    """THE Retry-After parser: delay-seconds or an HTTP date (RFC 9110 10.2.3), as seconds from `now` (a Unix time;
    this instant when None); None if absent or unreadable."""
    if value is None:
        return None
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when is None or when.tzinfo is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN, infinities
        return None
    return max(0.0, seconds)


def why(exc: BaseException) -> str:
    """A network failure in plain words."""
    if isinstance(exc, NoAnswer):
        return str(exc)
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # first: urllib3 makes it a ConnectTimeoutError too
        return "the connection was refused or could not be made"
    if (isinstance(exc, urllib3.exceptions.TimeoutError) or _is(exc, "requests.exceptions", "Timeout")
            or _is(exc, "httpx", "TimeoutException")):
        return "it timed out"
    if isinstance(exc, urllib3.exceptions.SSLError) or _is(exc, "requests.exceptions", "SSLError"):
        return "the TLS handshake failed: is the server's certificate trusted?"
    if _is(exc, "requests.exceptions", "ConnectionError") or _is(exc, "httpx", "ConnectError"):
        return "the connection was refused or could not be made"
    return "the connection broke"


def _is(exc, module: str, name: str) -> bool:
    """isinstance against a library's exception by name, walking the MRO: no import of a library we do not use."""
    return any(k.__module__ == module and k.__name__ == name for k in type(exc).__mro__)


def _network_failure(exc: BaseException) -> bool:
    """No HTTP answer at all, whichever client saw it (ours, requests under MSAL, httpx under msgraph/azure-core)."""
    return (isinstance(exc, NoAnswer | urllib3.exceptions.HTTPError)
            or _is(exc, "requests.exceptions", "RequestException")
            or _is(exc, "httpx", "TransportError")
            or _is(exc, "azure.core.exceptions", "ServiceRequestError")
            or _is(exc, "azure.core.exceptions", "ServiceResponseError"))


def _status_of(exc: BaseException) -> int | None:
    """An HTTP status an exception carries: MSAL's "HTTP Error: 503", azure-core's/msgraph's status_code."""
    for attribute in ("status_code", "response_status_code"):
        value = getattr(exc, attribute, None)
        if isinstance(value, int):
            return value
    if isinstance(exc, MsalServiceError):
        digits = str(exc).rsplit(":", 1)[-1].strip()
        return int(digits) if digits.isdigit() else None
    return None


def _error_fields(error: dict | None) -> tuple[str, list[int], str]:
    """(error name, AADSTS codes, description) of an Entra/IMDS error dict or an ARM {"error": {code, message}}."""
    if not isinstance(error, dict):
        return "", [], ""
    inner = error.get("error")
    if isinstance(inner, dict):  # ARM
        return str(inner.get("code", "")), [], str(inner.get("message", ""))
    codes = [c for c in error.get("error_codes") or [] if isinstance(c, int) and c]
    return str(inner or ""), codes, str(error.get("error_description", ""))


def _permanent_code(endpoint: str, name: str, codes: list[int], status: int | None) -> str:
    if codes:
        return f"AADSTS{codes[0]}"
    if endpoint == IMDS:
        return _IMDS_CODES.get(name, f"IMDS:{name or status or 'unknown'}")
    if endpoint == ARM:
        return name or (f"HTTP{status}" if status else "unknown")
    if endpoint in (HOME_DISCOVERY, TENANT_DISCOVERY) and status == 400 and name == "invalid_tenant":
        return "AADSTS90002"
    return name or "unknown"


def classify(endpoint: str, *, status: int | None = None, error: dict | None = None, exc: BaseException | None = None,
             retry_after: float | None = None, replayed: bool = False) -> Failure:
    """What a failed hop means.

    endpoint: one of ENDPOINTS. status: the HTTP status of this request's answer on the wire (None when nothing went
    on the wire). error: the answer's error body (Entra/IMDS `{error, error_codes, error_description}` or ARM
    `{"error": {code, message}}`, or MSAL's result dict). exc: what was raised, if anything. retry_after: the answer's
    Retry-After in seconds (retry_after_seconds). replayed: MSAL answered from its throttle cache, not from the wire
    (an error result with no request of ours behind it).
    """
    # Longer than our usual functions on purpose: one ordered decision table, read top to bottom; the first rule that
    # holds decides, and splitting it would hide that order.
    name, codes, description = _error_fields(error)
    carried = _status_of(exc) if exc is not None else None
    status = carried if status is None else status
    if exc is not None and _network_failure(exc):
        return Failure(TRANSIENT, TRANSIENT, endpoint, retry_after, status, "no_answer",
                       _said(_NO_ANSWER, endpoint, why=why(exc)))
    if exc is not None and carried is None and not isinstance(exc, MsalServiceError | ValueError):
        # Anything else raised, that is not about an HTTP answer, is ours: the cache, the database, a bug. Never the
        # tenant's fault, never permanent.
        return Failure(INFRASTRUCTURE, INFRASTRUCTURE, endpoint, None, status, type(exc).__name__[:64],
                       f"Our own infrastructure failed during this step ({type(exc).__name__}); the tenant was not "
                       "tested.")
    if transient_status(status, endpoint=endpoint):
        message = _said(_ANSWERED, endpoint, status=status)
        if replayed:
            message += " (MSAL replayed that answer from its throttle cache to this request.)"
        wait = retry_after if retry_after is not None else (MSAL_REPLAY_SECONDS if replayed else None)
        return Failure(TRANSIENT, TRANSIENT, endpoint, wait, status, name[:64] or f"HTTP{status}", message)
    if codes and all(c in TRANSIENT_AADSTS for c in codes):
        return Failure(TRANSIENT, TRANSIENT, endpoint, retry_after, status, name[:64], description[:2000])
    if not codes and status is None and (name in TRANSIENT_ERRORS or isinstance(exc, MsalServiceError) or replayed):
        # No status to go by: MSAL raised on a 5xx, or replayed a throttled answer (it replays 429/5xx answers, and
        # 400s, whose AADSTS codes are handled above and below), or the body itself says "later".
        wait = retry_after if retry_after is not None else (MSAL_REPLAY_SECONDS if replayed else None)
        message = description[:2000] or (_said(_ANSWERED, endpoint, status=status) if status else
                                         "Microsoft answered \"try again later\".")
        if replayed:
            message = f"{message} (MSAL replayed a throttled answer from its cache.)"
        return Failure(TRANSIENT, TRANSIENT, endpoint, wait, status, name[:64] or "temporarily_unavailable", message)
    if exc is not None and not codes and not name and status in (None, 200):
        # MSAL could not read an answer that was not an error (a discovery document that is not JSON or lacks
        # what MSAL needs): the setup's problem, with MSAL's words.
        return Failure(PERMANENT, "unknown", endpoint, None, status, type(exc).__name__[:64], str(exc)[:2000])
    code = _permanent_code(endpoint, name, codes, status)
    message = description[:2000] or (_said(_ANSWERED, endpoint, status=status) if status else name)
    return Failure(PERMANENT, code, endpoint, None, status, name[:64], message)
