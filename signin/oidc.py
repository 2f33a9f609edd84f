"""The OpenID Connect client: MSAL runs the code flow (state, nonce, PKCE) and redeems the code with a client
assertion — the web process's managed-identity token, trusted by a federated credential on the sign-in app, exactly as
the workers do (exchange.imds) — and this module validates the ID token fully (MSAL checks only the nonce): signature
against the tenant's published keys, issuer, audience, tenant, times with a skew, nonce, and MFA when required.

Transport is exchange's (exchange.http: the configured CA, the national clouds' hosts or ENTRA_BASE_URL).
"""
import threading
import time
from dataclasses import dataclass, field

import jwt
import msal
from django.conf import settings
from django.core.cache import cache

from exchange import imds
from exchange.clouds import CLOUDS
from exchange.http import NoAnswer, outbound_session


class SigninRefused(Exception):
    """A sign-in that must not proceed: `reason` keys REASONS (signin.views renders it, signin.services audits it)."""

    def __init__(self, reason: str, *, detail: str = "", code: str = "", identity: dict | None = None):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail, self.code = reason, detail, code
        self.identity = identity or {}


@dataclass(frozen=True)
class Config:
    client_id: str
    tenant_id: str
    cloud: str
    identity_client_id: str
    redirect_uri: str
    skew: int = 120
    require_mfa: bool = False
    key: tuple = field(default=(), compare=False)

    @property
    def issuer(self) -> str:
        """The v2 issuer of the tenant's ID tokens: the cloud's real login host, whatever transport is used."""
        return CLOUDS[self.cloud].issuer(self.tenant_id)

    @property
    def login_base(self) -> str:
        return CLOUDS[self.cloud].login_base

    @property
    def authority(self) -> str:
        return f"{self.login_base}/{self.tenant_id}"


def configured() -> bool:
    return bool(settings.ENTRA_SIGNIN_CLIENT_ID and settings.ENTRA_SIGNIN_TENANT_ID)


def config() -> Config:
    return Config(client_id=settings.ENTRA_SIGNIN_CLIENT_ID, tenant_id=settings.ENTRA_SIGNIN_TENANT_ID,
                  cloud=settings.ENTRA_SIGNIN_CLOUD, identity_client_id=settings.ENTRA_SIGNIN_IDENTITY_CLIENT_ID,
                  redirect_uri=settings.ENTRA_SIGNIN_REDIRECT_URI, skew=settings.ENTRA_SIGNIN_CLOCK_SKEW_SECONDS,
                  require_mfa=settings.ENTRA_SIGNIN_REQUIRE_MFA)


class _NoTokenCache(msal.TokenCache):
    """The portal keeps no token of a signed-in user: the ID token is read once, then dropped."""

    def add(self, event, now=None):
        return None


_clients: dict[tuple, msal.ConfidentialClientApplication] = {}
_lock = threading.Lock()


def _assertion(cfg: Config):
    audience = CLOUDS[cfg.cloud].exchange_audience
    # Called only when a code is redeemed; MSAL's managed-identity client keeps the token while it is fresh.
    return lambda: imds.mi_token(client_id=cfg.identity_client_id, resource=audience)["access_token"]


def client(cfg: Config) -> msal.ConfidentialClientApplication:
    """One MSAL client per configuration and process (its constructor reads the tenant's metadata)."""
    key = (cfg.authority, cfg.client_id, cfg.identity_client_id)
    with _lock:
        app = _clients.get(key)
    if app is None:
        try:
            app = msal.ConfidentialClientApplication(
                cfg.client_id, authority=cfg.authority, client_credential={"client_assertion": _assertion(cfg)},
                http_client=outbound_session(), token_cache=_NoTokenCache(), instance_discovery=False,
                exclude_scopes=["offline_access"])  # no refresh token: the portal only needs the ID token
        except (ValueError, NoAnswer, msal.exceptions.MsalServiceError) as exc:
            raise SigninRefused("unavailable", detail=f"Microsoft Entra ID's metadata for the tenant could not be "
                                f"read ({type(exc).__name__}).") from exc
        with _lock:
            app = _clients.setdefault(key, app)
    return app


def reset_clients() -> None:
    with _lock:
        _clients.clear()


def flow_initiate(cfg: Config) -> dict:
    """MSAL's auth code flow: the authorize URL (with state, a hashed nonce and an S256 code challenge) and the secrets
    to keep server-side until the callback (state, nonce, code verifier)."""
    return client(cfg).initiate_auth_code_flow(scopes=[], redirect_uri=cfg.redirect_uri, prompt="select_account")


# Token-endpoint codes when redeeming the code → the refusal shown (ENTRA_FACTS; emulator/signin.py gives them too).
REDEEM_CODES = {54005: "code_replayed", 501481: "pkce", 50148: "pkce", 70008: "code_expired", 70000: "code_invalid",
                500112: "redirect_mismatch", 50011: "redirect_mismatch"}


def flow_redeem(cfg: Config, flow: dict, params: dict) -> str:
    """Redeem the code of the callback `params`; the raw ID token, or SigninRefused."""
    try:
        result = client(cfg).acquire_token_by_auth_code_flow(flow, params)
    except imds.ImdsError as exc:  # our own identity could not get its token: our infrastructure, not the user
        raise SigninRefused("identity", detail=exc.message[:300], code=f"IMDS:{exc.code}") from exc
    except (NoAnswer, msal.exceptions.MsalServiceError) as exc:
        raise SigninRefused("unavailable", detail=f"{type(exc).__name__}: {exc}"[:300]) from exc
    except ValueError as exc:  # not JSON (state was compared before: the flow is looked up by it)
        raise SigninRefused("unavailable", detail=f"{type(exc).__name__}: {exc}"[:300]) from exc
    except RuntimeError as exc:  # MSAL: the ID token's nonce is not the hash of ours (or is missing)
        raise SigninRefused("nonce", detail="The ID token's nonce is missing or is not the one this sign-in "
                            "sent.") from exc
    if "error" in result:
        codes = result.get("error_codes") or []
        code = f"AADSTS{codes[0]}" if codes else str(result.get("error", ""))[:64]
        reason = REDEEM_CODES.get(codes[0], "configuration") if codes else "entra_error"
        description = str(result.get("error_description", ""))
        raise SigninRefused(reason, code=code, detail=description.split(" Trace ID:")[0][:500])
    if not result.get("id_token"):
        raise SigninRefused("malformed", detail="The token endpoint answered without an ID token.")
    return result["id_token"]


# --- the tenant's signing keys -------------------------------------------------------------------------------------
JWKS_TTL = 24 * 3600
JWKS_REFRESH_SECONDS = 60  # an unknown kid refetches the keys (Entra rolls them), at most this often


def _jwks_uri(cfg: Config) -> str:
    url = f"{cfg.authority}/v2.0/.well-known/openid-configuration"  # cached fleet-wide by exchange.http
    try:
        response = outbound_session().get(url)
        uri = response.json().get("jwks_uri") if response.status_code == 200 else None
    except (NoAnswer, ValueError) as exc:
        raise SigninRefused("unavailable", detail=f"The tenant's OpenID configuration could not be read: {exc}") from exc
    if not uri:
        raise SigninRefused("unavailable", detail=f"The tenant's OpenID configuration answered HTTP "
                            f"{response.status_code} without a jwks_uri.")
    return uri


def _fetch_keys(uri: str) -> dict:
    try:
        response = outbound_session().get(uri)
        keys = response.json().get("keys", []) if response.status_code == 200 else None
    except (NoAnswer, ValueError) as exc:
        raise SigninRefused("unavailable", detail=f"The tenant's signing keys could not be read: {exc}") from exc
    if keys is None:
        raise SigninRefused("unavailable", detail=f"The tenant's signing keys answered HTTP {response.status_code}.")
    found = {k["kid"]: k for k in keys if isinstance(k, dict) and k.get("kid") and k.get("kty") == "RSA"}
    cache.set(f"signin:jwks:{uri}", {"keys": found, "at": time.time()}, JWKS_TTL)
    return found


def signing_key(cfg: Config, kid: str | None):
    uri = _jwks_uri(cfg)
    cached = cache.get(f"signin:jwks:{uri}")
    keys = cached["keys"] if cached else _fetch_keys(uri)
    if kid not in keys and cached and time.time() - cached["at"] > JWKS_REFRESH_SECONDS:
        keys = _fetch_keys(uri)
    if kid not in keys:
        return None
    return jwt.PyJWK(keys[kid], algorithm="RS256").key


# --- the ID token ----------------------------------------------------------------------------------------------------
def unverified_identity(raw: str) -> dict:
    """Who the token claims to be, for the audit trail of a refused sign-in (marked unverified)."""
    try:
        claims = jwt.decode(raw, options={"verify_signature": False})
    except jwt.PyJWTError:
        return {}
    return {"oid": str(claims.get("oid", ""))[:64], "tid": str(claims.get("tid", ""))[:64],
            "upn": str(claims.get("preferred_username", ""))[:255], "verified": False}


def _decode_refusal(exc: jwt.PyJWTError, cfg: Config, claimed: dict) -> SigninRefused:
    """PyJWT's refusal of a token, as the reason the person is shown."""
    if isinstance(exc, jwt.InvalidSignatureError):
        return SigninRefused("signature", detail="The signature does not verify with the tenant's key.",
                             identity=claimed)
    if isinstance(exc, jwt.ExpiredSignatureError):
        return SigninRefused("expired", detail=f"Expired (allowing {cfg.skew} s of clock skew).", identity=claimed)
    if isinstance(exc, jwt.ImmatureSignatureError):
        return SigninRefused("not_yet_valid", detail=str(exc), identity=claimed)
    if isinstance(exc, jwt.InvalidAudienceError):
        return SigninRefused("audience", detail=f"Issued for another application, not {cfg.client_id}.",
                             identity=claimed)
    if isinstance(exc, jwt.InvalidIssuerError):
        if claimed.get("tid") and claimed["tid"].lower() != cfg.tenant_id:
            return SigninRefused("tenant", detail=f"Issued by tenant {claimed['tid']}, not {cfg.tenant_id}.",
                                 identity=claimed)
        return SigninRefused("issuer", detail=f"Issuer is not {cfg.issuer}.", identity=claimed)
    return SigninRefused("malformed", detail=str(exc), identity=claimed)


def _signed_claims(cfg: Config, raw: str, claimed: dict) -> dict:
    """The claims once the RS256 signature verifies with the tenant's published key named by `kid`, and the
    registered claims (exp, nbf, iss, aud…) pass."""
    try:
        header = jwt.get_unverified_header(raw)
    except jwt.PyJWTError as exc:
        raise SigninRefused("malformed", detail=str(exc)) from exc
    if header.get("alg") != "RS256":
        raise SigninRefused("signature", detail=f"Algorithm {header.get('alg')!r} instead of RS256.", identity=claimed)
    key = signing_key(cfg, header.get("kid"))
    if key is None:
        raise SigninRefused("signature", detail=f"Signed with key {header.get('kid')!r}, which the tenant does not "
                            "publish.", identity=claimed)
    try:
        return jwt.decode(raw, key, algorithms=["RS256"], audience=cfg.client_id, issuer=cfg.issuer, leeway=cfg.skew,
                          options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub", "tid", "oid"]})
    except jwt.PyJWTError as exc:
        raise _decode_refusal(exc, cfg, claimed) from exc


def id_token_validate(cfg: Config, raw: str, *, nonce_hash: str) -> dict:
    """The ID token's claims once every check passed; SigninRefused naming the first that failed."""
    claimed = unverified_identity(raw)
    claims = _signed_claims(cfg, raw, claimed)
    if str(claims["tid"]).lower() != cfg.tenant_id:
        raise SigninRefused("tenant", detail=f"Issued for tenant {claims['tid']}, not {cfg.tenant_id}.",
                            identity=claimed)
    if claims.get("ver") != "2.0":
        raise SigninRefused("malformed", detail=f"Token version {claims.get('ver')!r} instead of 2.0.",
                            identity=claimed)
    if not claims.get("nonce") or claims["nonce"] != nonce_hash:
        raise SigninRefused("nonce", detail="The nonce is missing or is not the one this sign-in sent.",
                            identity=claimed)
    verified = {**claimed, "verified": True}
    if cfg.require_mfa and "mfa" not in (claims.get("amr") or []):
        raise SigninRefused("mfa", detail=f"Authentication methods: {', '.join(claims.get('amr') or []) or 'none'}.",
                            identity=verified)
    return claims
