"""HTTP clients for Microsoft's endpoints: the configured CA, no proxy/CA variables from the environment, and a
per-thread record of the last response so that a step can report its HTTP status even through MSAL."""
import json
import ssl
import threading
from dataclasses import dataclass
from urllib.parse import urlencode

import certifi
import urllib3
from django.conf import settings
from urllib3 import HTTPHeaderDict

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


class NoAnswer(Exception):
    """No HTTP answer: the connection failed, timed out or broke (what requests.RequestException meant before)."""


def _why(exc: Exception) -> str:
    if isinstance(exc, urllib3.exceptions.NewConnectionError):  # first: urllib3 makes it a ConnectTimeoutError too
        return "the connection was refused or could not be made"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return "it timed out"
    if isinstance(exc, urllib3.exceptions.SSLError):
        return "the TLS handshake failed: is the server's certificate trusted?"
    return "the connection broke"


class Response:
    """What MSAL and our callers read of an answer (requests.Response's names): status_code, headers, content, text,
    json()."""

    __slots__ = ("status_code", "headers", "content", "url")

    def __init__(self, status_code: int, headers, content: bytes, url: str):
        self.status_code, self.headers, self.content, self.url = status_code, headers, content, url

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)  # ValueError (json.JSONDecodeError) when it is not JSON


DISCOVERY_SUFFIX = "/.well-known/openid-configuration"
DISCOVERY_TTL = 24 * 3600  # as long as MSAL keeps a discovery GET in its own http_cache


def _cached_discovery(url: str) -> Response | None:
    """A tenant's discovery document from Django's cache (Redis in production): public and stable, so one worker's
    fetch serves every worker process instead of each process asking Entra once per tenant (MSAL's own cache is
    per process)."""
    from django.core.cache import cache

    body = cache.get(f"oidc:{url}")
    if body is None:
        return None
    return Response(200, HTTPHeaderDict({"Content-Type": "application/json"}), body, url)


class EntraClient:
    """The HTTP client for login and ARM calls (and, as ImdsClient, IMDS), and MSAL's `http_client` (its documented
    interface: get/post/close). urllib3 directly: requests' session machinery (cookies, hooks, environment merging)
    cost ~0.2 ms of CPU per call, and a token test makes two. Trust is the configured CA bundle (or certifi's, as with
    requests); no proxy or CA variables are read from the environment; no retries or redirects (the retry policy is
    the token test's)."""

    def __init__(self):
        self._pool = urllib3.PoolManager(ca_certs=settings.ENTRA_CA_BUNDLE or certifi.where(), retries=False,
                                         maxsize=4)

    def get(self, url, params=None, headers=None, **kwargs):
        return self.request("GET", url, params=params, headers=headers, **kwargs)

    def post(self, url, params=None, data=None, headers=None, **kwargs):
        return self.request("POST", url, params=params, data=data, headers=headers, **kwargs)

    def request(self, method, url, *, params=None, data=None, headers=None, timeout=None, **_ignored) -> Response:
        if params:
            url = f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
        discovery = method == "GET" and url.endswith(DISCOVERY_SUFFIX) and "/v2.0/" in url
        if discovery:
            cached = _cached_discovery(url)
            if cached is not None:
                return cached
        headers = dict(headers or {})
        body = None
        if isinstance(data, dict):
            body = urlencode(data)
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif data is not None:
            body = data
        record = wire()
        record.requests += 1
        record.status = record.retry_after = None
        limit = timeout or settings.ENTRA_HTTP_TIMEOUT
        try:
            raw = self._pool.request(method, url, body=body, headers=headers, timeout=urllib3.Timeout(
                connect=limit, read=limit), redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise NoAnswer(_why(exc)) from exc
        response = Response(raw.status, raw.headers, raw.data, url)
        record.status, record.retry_after = response.status_code, _retry_after(response)
        if discovery and response.status_code == 200:
            from django.core.cache import cache

            cache.set(f"oidc:{url}", response.content, DISCOVERY_TTL)
        return response

    def close(self) -> None:
        self._pool.clear()


class ImdsClient(EntraClient):
    """MSAL's ManagedIdentityClient has no endpoint parameter: send its 169.254.169.254 calls to IMDS_URL."""

    IMDS_HOST = "http://169.254.169.254"

    def request(self, method, url, **kwargs):
        if url.startswith(self.IMDS_HOST):
            url = settings.IMDS_URL + url[len(self.IMDS_HOST):]
        return super().request(method, url, **kwargs)


_sessions: dict[str, EntraClient] = {}
_sessions_lock = threading.Lock()


def entra_session() -> EntraClient:
    """One pooled client per process and thread for login and ARM."""
    key = f"entra-{threading.get_ident()}"
    with _sessions_lock:
        session = _sessions.get(key)
        if session is None:
            session = _sessions[key] = EntraClient()
    return session


def ssl_context() -> ssl.SSLContext:
    """For httpx (msgraph-sdk): the same trust as entra_session()."""
    return ssl.create_default_context(cafile=settings.ENTRA_CA_BUNDLE or certifi.where())


def reset_sessions() -> None:
    with _sessions_lock:
        for session in _sessions.values():
            session.close()
        _sessions.clear()
