"""What a chain records: its steps (ChainStep), its result (ChainResult), and the non-secret claims of a token."""
import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from exchange.faults import INFRASTRUCTURE, PERMANENT, Failure

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
    code: str  # "verified", "no_role", or the failing step's error_code ("transient", "infrastructure", AADSTS...)
    transient: bool = False  # worth another attempt: a transient failure, or one of our own infrastructure
    retry_after: float | None = None
    raw_error: dict = field(default_factory=dict)
    failure: Failure | None = None  # what the failing hop means (faults.classify); None when the chain got an answer

    @property
    def kind(self) -> str:
        """"" (the chain got an answer: verified, no role...), or faults.TRANSIENT, PERMANENT or INFRASTRUCTURE."""
        return self.failure.kind if self.failure else ""

    @property
    def endpoint(self) -> str:
        """Where it failed: one of faults.ENDPOINTS (imds, home_discovery, home_token, tenant_discovery,
        tenant_token, arm), or ""."""
        return self.failure.endpoint if self.failure else ""

    @property
    def infrastructure(self) -> bool:
        """Our own infrastructure failed (cache, database, a bug): the tenant was not tested, and this must never be
        recorded as the tenant failing."""
        return self.kind == INFRASTRUCTURE


class Step:
    def __init__(self, steps: list[ChainStep], name: str):
        self.step = ChainStep(name=name, started_at=datetime.now(UTC))
        self._t0 = time.perf_counter()
        steps.append(self.step)

    def __enter__(self):
        return self.step

    def __exit__(self, *exc):
        self.step.duration_ms = int((time.perf_counter() - self._t0) * 1000)
        return False


def step_failed(steps: list[ChainStep], step: ChainStep, failure: Failure, raw: dict | None = None) -> ChainResult:
    """Record a failed hop on its step, and the chain's result."""
    step.ok = False
    step.http_status = failure.http_status if failure.http_status is not None else step.http_status
    step.error_code, step.error, step.message = failure.code, failure.error[:64], failure.message[:2000]
    step.transient, step.retry_after = failure.kind != PERMANENT, failure.retry_after
    if failure.kind == INFRASTRUCTURE:
        step.detail["infrastructure"] = True
    return ChainResult(steps, failure.code, failure.kind != PERMANENT, failure.retry_after, raw or {}, failure)


def on_wire(record, before: int, url: str | None = None) -> dict:
    """What classify needs of this thread's last answer, if a request of this hop (to `url`) went on the wire."""
    if record.requests == before or (url is not None and record.url != url):
        return {}
    return {"status": record.status, "retry_after": record.retry_after, "error": record.error}


