"""HTTP sessions for Microsoft's endpoints: the configured CA, no proxy/CA variables from the environment, and a
per-thread record of the last response so that a step can report its HTTP status even through MSAL."""
import ssl
import threading
from dataclasses import dataclass

import requests
from django.conf import settings

_local = threading.local()


@dataclass
class WireRecord:
    requests: int = 0
    status: int | None = None
    retry_after: float | None = None


def wire() -> WireRecord:
    """What went on the wire in this thread (MSAL replays from its caches never reach the session)."""
    record = getattr(_local, "wire", None)
    if record is None:
        record = _local.wire = WireRecord()
    return record


def _retry_after(response) -> float | None:
    raw = response.headers.get("Retry-After")
    try:
        return float(raw) if raw is not None else None
    except ValueError:
        return None


DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
DISCOVERY_TTL = 24 * 3600  # as long as MSAL keeps a discovery GET in its own http_cache


def _cached_discovery(url: str):
    """A tenant's discovery document from Django's cache (Redis in production): public and stable, so one worker's
    fetch serves every worker process instead of each process asking Entra once per tenant (MSAL's own cache is
    per process)."""
    from django.core.cache import cache

    body = cache.get(f"oidc:{url}")
    if body is None:
        return None
    response = requests.Response()
    response.status_code, response._content, response.url = 200, body, url
    response.headers["Content-Type"] = "application/json"
    return response


class RecordingSession(requests.Session):
    def __init__(self):
        super().__init__()
        # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override verify= unless trust_env is off (ENTRA_FACTS).
        self.trust_env = False
        self.verify = settings.ENTRA_CA_BUNDLE or True

    def request(self, method, url, *args, **kwargs):
        kwargs.setdefault("timeout", settings.ENTRA_HTTP_TIMEOUT)
        discovery = method == "GET" and url.endswith(DISCOVERY_SUFFIX) and "/v2.0/" in url
        if discovery:
            cached = _cached_discovery(url)
            if cached is not None:
                return cached
        record = wire()
        record.requests += 1
        record.status = record.retry_after = None
        response = super().request(method, url, *args, **kwargs)
        record.status, record.retry_after = response.status_code, _retry_after(response)
        if discovery and response.status_code == 200:
            from django.core.cache import cache

            cache.set(f"oidc:{url}", response.content, DISCOVERY_TTL)
        return response


class ImdsSession(RecordingSession):
    """MSAL's ManagedIdentityClient has no endpoint parameter: send its 169.254.169.254 calls to IMDS_URL."""

    IMDS_HOST = "http://169.254.169.254"

    def request(self, method, url, *args, **kwargs):
        if url.startswith(self.IMDS_HOST):
            url = settings.IMDS_URL + url[len(self.IMDS_HOST):]
        return super().request(method, url, *args, **kwargs)


_sessions: dict[str, RecordingSession] = {}
_sessions_lock = threading.Lock()


def entra_session() -> RecordingSession:
    """One pooled session per process and thread for login, Graph and ARM."""
    key = f"entra-{threading.get_ident()}"
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = RecordingSession()
    return session


def ssl_context() -> ssl.SSLContext:
    """For httpx (msgraph-sdk): the same trust as entra_session()."""
    return ssl.create_default_context(cafile=settings.ENTRA_CA_BUNDLE or None)


def reset_sessions() -> None:
    with _sessions_lock:
        for session in _sessions.values():
            session.close()
        _sessions.clear()
