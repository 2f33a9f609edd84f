"""Entra ID: tenant discovery, and the client-credentials exchange with a managed-identity token as assertion."""
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import msal

from exchange.clouds import CLOUDS
from exchange.faults import transient_status
from exchange.http import DISCOVERY_SUFFIX, NoAnswer, outbound_session, shared_cache, throttled_answer, wire


class TenantNotFound(Exception):
    pass


class EntraUnavailable(Exception):
    pass


@dataclass(frozen=True)
class TenantDiscovery:
    tenant_id: str
    issuer: str
    region: str
    cloud_instance_name: str


def tenant_discover(*, cloud_key: str, domain_or_id: str) -> TenantDiscovery:
    """Resolve a verified domain (or a GUID) to the tenant GUID through OpenID discovery (ENTRA_FACTS)."""
    cloud = CLOUDS[cloud_key]
    name = domain_or_id.strip().lower()
    if not name or "/" in name or "?" in name or "#" in name:
        raise TenantNotFound(f"{domain_or_id!r} is not a domain name or a tenant id.")
    url = f"{cloud.login_base}/{name}/v2.0/.well-known/openid-configuration"
    try:
        response = outbound_session().get(url)
    except NoAnswer as exc:
        raise EntraUnavailable(f"Microsoft Entra ID did not answer: {exc}. Try again.") from exc
    if transient_status(response.status_code):
        raise EntraUnavailable(f"Microsoft Entra ID answered HTTP {response.status_code}. Try again in a minute.")
    try:
        body = response.json()
    except ValueError as exc:
        raise EntraUnavailable("Microsoft Entra ID answered with something that is not JSON.") from exc
    if response.status_code != 200 or "issuer" not in body:
        if 90002 in body.get("error_codes", []) or body.get("error") == "invalid_tenant":
            raise TenantNotFound(f"No tenant named {domain_or_id!r} exists in {cloud.name}.")
        raise TenantNotFound(f"Microsoft Entra ID refused {domain_or_id!r}: {body.get('error', response.status_code)}")
    # issuer = https://{login host}/{tenant GUID}/v2.0
    parts = body["issuer"].rstrip("/").split("/")
    tenant_id = parts[-2] if parts[-1] == "v2.0" else parts[-1]
    return TenantDiscovery(
        tenant_id=tenant_id.lower(),
        issuer=body["issuer"],
        region=str(body.get("tenant_region_scope", "")),
        cloud_instance_name=str(body.get("cloud_instance_name", "")),
    )


class _NoTokenCache(msal.TokenCache):
    """A token test must exchange on the wire every time (and a token should live no longer than its use)."""

    def add(self, event, now=None):
        return None


# One ConfidentialClientApplication per (cloud base, tenant, app), kept for the worker's life. A client weighs ~25 kB:
# the least recently used ones beyond ENTRA_CLIENTS_MAX per process are dropped (and rebuilt if needed again).
# Each client keeps its own MSAL http_cache: a chain runs on several threads at once, and MSAL guards an http_cache
# with a lock of each client's own, so clients sharing one dict could corrupt its index. Nothing is lost by it: with
# instance discovery off, the only GET MSAL caches is the tenant's own metadata, which no other client asks for, and
# http.OutboundClient shares that between every process through Django's cache (ENTRA_FACTS' aim, fleet-wide).
_apps: OrderedDict[tuple[str, str, str], msal.ConfidentialClientApplication] = OrderedDict()
_lock = threading.Lock()


def confidential_client(*, login_base: str, tenant_id: str, client_id: str,
                        assertion: Callable[[], str]) -> msal.ConfidentialClientApplication:
    """Raises ValueError when MSAL cannot read the tenant's metadata (unknown tenant, wrong cloud)."""
    from django.conf import settings

    key = (login_base, tenant_id, client_id)
    with _lock:
        app = _apps.get(key)
        if app is not None:
            _apps.move_to_end(key)
    if app is None:
        app = msal.ConfidentialClientApplication(
            client_id,
            client_credential={"client_assertion": assertion},
            authority=f"{login_base}/{tenant_id}",
            http_client=outbound_session(),
            http_cache={},
            token_cache=_NoTokenCache(),
            instance_discovery=False,
        )
        with _lock:
            app = _apps.setdefault(key, app)
            while len(_apps) > settings.ENTRA_CLIENTS_MAX:
                _apps.popitem(last=False)
    return app


def forget_throttle(tenant_id: str) -> None:
    """Before our own (backed-off) retry of a tenant: drop its clients, and with them the 429/5xx/400 answers MSAL
    would otherwise replay from their http_cache (ENTRA_FACTS). The next exchange builds a fresh client."""
    with _lock:
        for key in [k for k in _apps if k[1] == tenant_id]:
            del _apps[key]


@dataclass
class TokenAttempt:
    result: dict
    http_status: int | None
    retry_after: float | None
    on_wire: bool
    replayed: bool = False  # MSAL answered an error from its throttle cache: http_status is the replayed answer's


def replayed_answer(app: msal.ConfidentialClientApplication) -> tuple[int, float | None] | None:
    """The throttled answer (status, seconds left of its Retry-After) MSAL may be replaying for this client's token
    endpoint, as last seen on the wire by any thread of this process."""
    return throttled_answer(app.authority.token_endpoint)


def client_credentials(app: msal.ConfidentialClientApplication, scope: str) -> TokenAttempt:
    """Raises MsalServiceError when the token endpoint answered (or MSAL replayed) a 5xx, NoAnswer without answer."""
    record = wire()
    before = record.requests
    result = app.acquire_token_for_client(scopes=[scope])
    # Sent, if the last request was the token endpoint's: MSAL calls the assertion (IMDS, when the MI token is
    # renewed) even before answering from its throttle cache.
    if record.requests > before and record.url == app.authority.token_endpoint:
        return TokenAttempt(result, record.status, record.retry_after, True)
    if "access_token" in result:
        return TokenAttempt(result, None, None, False)
    # An error with nothing sent: MSAL replayed an answer it throttles (a 429/5xx for its Retry-After, a 400 for 60 s).
    status, retry_after = replayed_answer(app) or (None, None)
    return TokenAttempt(result, status, retry_after, False, replayed=True)


def client_tenants() -> set[str]:
    """The tenants this process holds an MSAL client for (at most ENTRA_CLIENTS_MAX clients are kept)."""
    with _lock:
        return {key[1] for key in _apps}


def reset_clients() -> None:
    with _lock:
        _apps.clear()


ISSUER_TIMEOUT_SECONDS = 5  # an external issuer's discovery document, read while a page lints the FICs
DISCOVERY_PROBLEM_TTL = 600  # seconds an external issuer's verdict is remembered


def oidc_discovery_problem(issuer: str) -> str | None:
    """For an "other issuer" FIC: does `{issuer}/.well-known/openid-configuration` answer and name the same issuer?"""
    try:
        response = outbound_session().get(f"{issuer.rstrip('/')}{DISCOVERY_SUFFIX}", timeout=ISSUER_TIMEOUT_SECONDS)
        body = response.json() if response.status_code == 200 else {}
    except NoAnswer as exc:
        return f"no answer from {issuer}: {exc}"
    except ValueError:
        return f"{issuer} answered with something that is not JSON"
    if response.status_code != 200:
        return f"{issuer}/.well-known/openid-configuration answered HTTP {response.status_code}"
    if body.get("issuer", "").rstrip("/") != issuer.rstrip("/"):
        return f"the document names the issuer {body.get('issuer')!r}"
    if not body.get("jwks_uri"):
        return "the document has no jwks_uri"
    return None


def oidc_discovery_problem_cached(issuer: str, ttl: int = DISCOVERY_PROBLEM_TTL) -> str | None:
    """oidc_discovery_problem, remembered in the shared discovery cache (http.shared_cache) for `ttl` seconds (a page
    or an API call lints every FIC; the issuers rarely change)."""
    key = f"oidc-discovery:{issuer}"
    cached = shared_cache("get", key)
    if cached is None:
        cached = oidc_discovery_problem(issuer) or ""
        shared_cache("set", key, cached, ttl)
    return cached or None
