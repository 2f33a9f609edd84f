"""HTTP clients for Microsoft's endpoints: the configured CA, no proxy/CA variables from the environment, a per-thread
record of the last response so that a step can report its HTTP status even through MSAL, and a per-URL record of the
last throttled answer so that a step can still classify an answer MSAL replays from its cache."""
import json
import logging
import os
import ssl
import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urlencode

import certifi
import urllib3
from django.conf import settings
from urllib3 import HTTPHeaderDict

from exchange.faults import NoAnswer, retry_after_seconds, transient_status, why

__all__ = ["NoAnswer", "OutboundClient", "ImdsClient", "outbound_session", "wire", "throttled_answer"]

logger = logging.getLogger(__name__)
_local = threading.local()


@dataclass
class WireRecord:
    requests: int = 0
    status: int | None = None
    retry_after: float | None = None
    error: dict | None = None  # an error answer's {error, error_codes} (never a token: errors carry none)
    url: str = ""  # of the last request (MSAL may call IMDS, through the assertion, before its own request)


def wire() -> WireRecord:
    """What went on the wire in this thread (MSAL replays from its caches never reach the session)."""
    record = getattr(_local, "wire", None)
    if record is None:
        record = _local.wire = WireRecord()
    return record


def _error_of(content: bytes) -> dict | None:
    try:
        body = json.loads(content)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    return {k: body[k] for k in ("error", "error_codes") if k in body}


# The last throttled answer (429/5xx) per URL, across threads: MSAL replays it from its cache to every thread sharing
# a client, with no response behind the replay; the replay's caller finds here what was on the wire and how long the
# server asked us to wait. Bounded: only the most recent ones matter (MSAL replays for at most Retry-After).
_THROTTLED_MAX = 1024
_throttled: OrderedDict[str, tuple[int, float | None, float]] = OrderedDict()
_throttled_lock = threading.Lock()


def _note_answer(url: str, status: int, retry_after: float | None) -> None:
    with _throttled_lock:
        if transient_status(status):
            _throttled[url] = (status, retry_after, time.monotonic())
            _throttled.move_to_end(url)
            while len(_throttled) > _THROTTLED_MAX:
                _throttled.popitem(last=False)
        else:
            _throttled.pop(url, None)


def throttled_answer(url: str) -> tuple[int, float | None] | None:
    """(status, seconds still to wait or None) of the last answer from `url` if it was a 429/5xx; else None."""
    with _throttled_lock:
        found = _throttled.get(url)
    if found is None:
        return None
    status, retry_after, at = found
    return status, None if retry_after is None else max(0.0, retry_after - (time.monotonic() - at))


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
DISCOVERY_TTL = 24 * 60 * 60  # as long as MSAL keeps a discovery GET in its own http_cache


# The shared cache is an optimisation: when it fails (Redis down or refusing), discovery is read from Entra directly
# for CACHE_RETRY_SECONDS before the cache is tried again, and the outage is logged once, not once per tenant.
CACHE_RETRY_SECONDS = 30.0
_cache_state = {"down_until": 0.0, "failing": False}
_cache_lock = threading.Lock()


def shared_cache(operation: str, *args):
    """cache.get/set, or None when the cache fails (any error of it is ours, never the tenant's)."""
    from django.core.cache import cache

    if time.monotonic() < _cache_state["down_until"]:
        return None
    try:
        result = getattr(cache, operation)(*args)
    except Exception as exc:  # whichever backend, whatever broke: the chain degrades instead of failing
        with _cache_lock:
            first = not _cache_state["failing"]
            _cache_state.update(failing=True, down_until=time.monotonic() + CACHE_RETRY_SECONDS)
        if first:
            logger.warning("The shared cache failed (%s: %s): tenants' discovery documents are read from Microsoft "
                           "Entra ID directly until it answers again.", type(exc).__name__, exc)
        return None
    if _cache_state["failing"]:
        with _cache_lock:
            _cache_state["failing"] = False
        logger.warning("The shared cache answers again.")
    return result


def _cached_discovery(url: str) -> Response | None:
    """A tenant's discovery document from Django's cache (Redis in production): public and stable, so one worker's
    fetch serves every worker process instead of each process asking Entra once per tenant (MSAL's own cache is
    per process)."""
    body = shared_cache("get", f"oidc:{url}")
    if body is None:
        return None
    return Response(200, HTTPHeaderDict({"Content-Type": "application/json"}), body, url)


class OutboundClient:
    """The HTTP client of every outbound call: Entra's login and discovery, ARM, external OIDC issuers (and, as
    ImdsClient, IMDS); MSAL's `http_client` (its documented
    interface: get/post/close). urllib3 directly: requests' session machinery (cookies, hooks, environment merging)
    cost ~0.2 ms of CPU per call, and a token test makes two. Trust is the configured CA bundle (or certifi's, as with
    requests); no proxy or CA variables are read from the environment; no retries or redirects (the retry policy is
    the token test's)."""

    def __init__(self, maxsize: int = 4):
        self._maxsize = maxsize
        self._pool = self._new_pool()
        _clients.add(self)

    def _new_pool(self) -> urllib3.PoolManager:
        return urllib3.PoolManager(ca_certs=settings.ENTRA_CA_BUNDLE or certifi.where(), retries=False,
                                   maxsize=self._maxsize)

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
        record.status = record.retry_after = record.error = None
        record.url = url
        limit = timeout or settings.ENTRA_HTTP_TIMEOUT
        try:
            raw = self._pool.request(method, url, body=body, headers=headers, timeout=urllib3.Timeout(
                connect=limit, read=limit), redirect=False)
        except urllib3.exceptions.HTTPError as exc:
            raise NoAnswer(why(exc)) from exc
        response = Response(raw.status, raw.headers, raw.data, url)
        record.status = response.status_code
        record.retry_after = retry_after_seconds(response.headers.get("Retry-After"))
        if response.status_code >= 400:
            record.error = _error_of(response.content)
        if method == "POST" or response.status_code >= 400 or url in _throttled:
            _note_answer(url, response.status_code, record.retry_after)
        if discovery and response.status_code == 200:
            shared_cache("set", f"oidc:{url}", response.content, DISCOVERY_TTL)
        return response

    def close(self) -> None:
        self._pool.clear()


class ImdsClient(OutboundClient):
    """MSAL's ManagedIdentityClient has no endpoint parameter: send its 169.254.169.254 calls to IMDS_URL."""

    IMDS_HOST = "http://169.254.169.254"

    def request(self, method, url, **kwargs):
        if url.startswith(self.IMDS_HOST):
            url = settings.IMDS_URL + url[len(self.IMDS_HOST):]
        return super().request(method, url, **kwargs)


_session: OutboundClient | None = None
_sessions_lock = threading.Lock()
_clients: "weakref.WeakSet[OutboundClient]" = weakref.WeakSet()  # every client of this process (to renew after a fork)


def outbound_session() -> OutboundClient:
    """The process's pooled client for Entra, ARM and OIDC issuers, shared by every thread (urllib3's pools are thread-safe): MSAL
    clients built on one thread are used by all. Each host's pool holds as many connections as threads may use it at
    once (TOKEN_TEST_THREADS, plus a few for the task's own thread), so none is discarded as "pool is full"."""
    global _session
    with _sessions_lock:
        if _session is None:
            _session = OutboundClient(maxsize=max(1, settings.TOKEN_TEST_THREADS) + 4)
        return _session


def ssl_context() -> ssl.SSLContext:
    """For httpx (msgraph-sdk): the same trust as outbound_session()."""
    return ssl.create_default_context(cafile=settings.ENTRA_CA_BUNDLE or certifi.where())


def reset_sessions() -> None:
    global _session
    with _sessions_lock:
        if _session is not None:
            _session.close()
        _session = None
    with _throttled_lock:
        _throttled.clear()
    with _cache_lock:
        _cache_state.update(failing=False, down_until=0.0)


def _forget_in_child() -> None:
    """A forked child (Celery's prefork pool) must not share its parent's connections (nor a lock a parent's thread
    held): every client, including those MSAL clients inherited hold, opens its own."""
    global _sessions_lock, _throttled_lock, _cache_lock
    _sessions_lock, _throttled_lock, _cache_lock = threading.Lock(), threading.Lock(), threading.Lock()
    for client in list(_clients):
        client._pool = client._new_pool()


os.register_at_fork(after_in_child=_forget_in_child)
