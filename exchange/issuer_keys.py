"""An issuer's signing keys, for the automation API's token exchange (api/), found through OpenID discovery: https
only, bounded in time and size, cached in the shared cache (re-read when a token names a key id the cache lacks, at
most once per API_JWKS_REFRESH_SECONDS). Outbound HTTP lives in exchange/ (DESIGN.md), hence here.

Entra issuers are discovered where Entra serves their metadata, on the cloud's login host (which ENTRA_BASE_URL
replaces for the emulator, as for every other Microsoft call): `https://login.microsoftonline.com/{tenant}/v2.0`
at `{login}/{tenant}/v2.0/.well-known/openid-configuration`, the v1 issuer `https://sts.windows.net/{tenant}/` at
`{login}/{tenant}/.well-known/openid-configuration`. Any other issuer at `{issuer}/.well-known/openid-configuration`.
In every case the document must name exactly the issuer asked for.
"""
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass

import certifi
import jwt
import urllib3
from django.conf import settings
from django.core.cache import cache

from exchange.clouds import CLOUDS


class KeysUnavailable(Exception):
    """The issuer's discovery document or JWKS could not be read (not the caller's fault: retry later)."""


@dataclass(frozen=True)
class KeySet:
    issuer: str
    keys: tuple  # JWK dicts
    fetched_at: float

    def find(self, kid: str | None) -> dict | None:
        if kid is None:
            return self.keys[0] if len(self.keys) == 1 else None
        return next((k for k in self.keys if k.get("kid") == kid), None)


def discovery_url(issuer: str) -> str:
    sts = re.fullmatch(r"https://sts\.windows\.net/([^/]+)/", issuer)
    if sts:
        return f"{CLOUDS['global'].login_base}/{sts.group(1)}/.well-known/openid-configuration"
    for cloud in CLOUDS.values():
        entra = re.fullmatch(rf"https://{re.escape(cloud.login_host)}/([^/]+)/v2\.0", issuer)
        if entra:
            return f"{cloud.login_base}/{entra.group(1)}/v2.0/.well-known/openid-configuration"
    return f"{issuer.rstrip('/')}/.well-known/openid-configuration"


_pools: dict[str, urllib3.PoolManager] = {}
_pools_lock = threading.Lock()


def _pool() -> urllib3.PoolManager:
    ca = settings.ENTRA_CA_BUNDLE or certifi.where()
    with _pools_lock:
        if ca not in _pools:
            _pools[ca] = urllib3.PoolManager(ca_certs=ca, retries=False, maxsize=2)
        return _pools[ca]


def _get_json(url: str) -> dict:
    """GET a small JSON document over https, within API_OIDC_TIMEOUT seconds and API_OIDC_MAX_BYTES."""
    if not url.startswith("https://"):
        raise KeysUnavailable(f"{url} is not https")
    limit = settings.API_OIDC_MAX_BYTES
    try:
        response = _pool().request("GET", url, preload_content=False, redirect=False,
                                   timeout=urllib3.Timeout(total=settings.API_OIDC_TIMEOUT),
                                   headers={"Accept": "application/json"})
        try:
            body = response.read(limit + 1)
        finally:
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        raise KeysUnavailable(f"no answer from {url}: {type(exc).__name__}") from exc
    if response.status != 200:
        raise KeysUnavailable(f"{url} answered HTTP {response.status}")
    if len(body) > limit:
        raise KeysUnavailable(f"{url} answered more than {limit} bytes")
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise KeysUnavailable(f"{url} answered something that is not JSON") from exc
    if not isinstance(document, dict):
        raise KeysUnavailable(f"{url} answered something that is not a JSON object")
    return document


def _fetch(issuer: str) -> KeySet:
    document = _get_json(discovery_url(issuer))
    if document.get("issuer") != issuer:
        raise KeysUnavailable(f"the discovery document names the issuer {document.get('issuer')!r}, not {issuer!r}")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
        raise KeysUnavailable("the discovery document has no https jwks_uri")
    keys = _get_json(jwks_uri).get("keys")
    if not isinstance(keys, list):
        raise KeysUnavailable(f"{jwks_uri} has no keys")
    return KeySet(issuer, tuple(k for k in keys if isinstance(k, dict)), time.time())


def _cache_key(issuer: str) -> str:
    return "api-jwks:" + hashlib.sha256(issuer.encode()).hexdigest()


def key_set(issuer: str, *, refresh: bool = False) -> KeySet:
    """The issuer's keys from the shared cache, or fetched (and cached) when absent or when `refresh` is asked and
    the cached copy is older than API_JWKS_REFRESH_SECONDS (a stream of unknown key ids cannot hammer the issuer)."""
    cached = cache.get(_cache_key(issuer))
    if cached is not None:
        keys = KeySet(issuer, tuple(cached["keys"]), cached["at"])
        if not refresh or time.time() - keys.fetched_at < settings.API_JWKS_REFRESH_SECONDS:
            return keys
    keys = _fetch(issuer)
    cache.set(_cache_key(issuer), {"keys": list(keys.keys), "at": keys.fetched_at}, settings.API_JWKS_TTL_SECONDS)
    return keys


# Parsed keys, per process: building an RSA public key from its JWK costs more than verifying a signature.
_parsed: dict[str, jwt.PyJWK] = {}


def parsed_key(jwk: dict, algorithm: str) -> jwt.PyJWK:
    fingerprint = hashlib.sha256(json.dumps([jwk, algorithm], sort_keys=True).encode()).hexdigest()
    key = _parsed.get(fingerprint)
    if key is None:
        if len(_parsed) > 256:
            _parsed.clear()
        key = _parsed[fingerprint] = jwt.PyJWK(jwk, algorithm=algorithm)
    return key
