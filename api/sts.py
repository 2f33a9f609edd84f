"""The token exchange: a workload's platform token (an Azure managed identity, a GitHub Actions run, any OIDC
issuer) for a short-lived portal token, granted or refused, and audited either way."""
import secrets
import time
from dataclasses import dataclass

import jwt
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from api.models import IdentityProvider, PortalToken
from api.services import TOKEN_PREFIX, api_actor, token_hash
from exchange import issuer_keys
from portal.services import Actor, audit_record

MAX_JWT_BYTES = 16 * 1024
# Asymmetric algorithms only: a verifier that accepted HS* could be fooled by an HMAC keyed with the public key.
ALGORITHMS = {"RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
              "ES256": "EC", "ES384": "EC", "ES512": "EC", "EdDSA": "OKP"}
# The claims a portal token remembers of the workload token (never the token itself).
KEPT_CLAIMS = ("iss", "sub", "aud", "tid", "oid", "azp", "appid", "xms_mirid", "repository", "ref", "environment",
               "job_workflow_ref", "run_id", "jti", "iat", "exp")


# --- refusals --------------------------------------------------------------------------------------------------
class ExchangeRefused(Exception):
    """`public` is what the caller is told (only what it can fix); `reason` is audited (the precise check)."""

    def __init__(self, public: str, reason: str, *, status: int = 401):
        super().__init__(reason)
        self.public, self.reason, self.status = public, reason, status


# What a refused caller is told. Anything beyond these (unknown issuer, subject, signature, key, provider disabled)
# is one answer, so that a guesser learns nothing about which identity providers exist.
NOT_ACCEPTED = "not_accepted"
PUBLIC_DETAIL = {
    "malformed": "jwt_token is not a JSON Web Token.",
    "issuer_mismatch": "The token's iss is not the issuer_uri you sent: send the issuer exactly as the token has it.",
    "audience": "The token was not issued for the audience you sent: request your platform token for that "
                "audience (the identity provider's configured audience).",
    "expired": "The token has expired: fetch a fresh one from your platform.",
    "not_yet_valid": "The token is not valid yet: check this machine's clock.",
    NOT_ACCEPTED: "No identity provider of this portal accepts this token.",
    "unavailable": "The issuer's signing keys could not be read just now: try again in a minute.",
}


@dataclass(frozen=True)
class Grant:
    token: str
    portal_token: PortalToken
    provider: IdentityProvider

    @property
    def expires_in(self) -> int:
        return max(0, int((self.portal_token.expires_at - timezone.now()).total_seconds()))


def _refuse(public: str, reason: str, status: int = 401):
    raise ExchangeRefused(public, reason, status=status)


def _audience_of(claims: dict) -> list[str]:
    aud = claims.get("aud")
    return [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] if isinstance(aud, list) else []


def _check_times(claims: dict, now: float) -> None:
    skew = settings.API_CLOCK_SKEW_SECONDS
    for name in ("exp", "iat"):
        if not isinstance(claims.get(name), int | float) or isinstance(claims.get(name), bool):
            _refuse(NOT_ACCEPTED, f"the token has no numeric {name}")
    if claims["exp"] <= now - skew:
        _refuse("expired", f"expired at {int(claims['exp'])} (now {int(now)}, skew {skew} s)")
    nbf = claims.get("nbf")
    if nbf is not None and (not isinstance(nbf, int | float) or nbf > now + skew):
        _refuse("not_yet_valid", f"not valid before {nbf} (now {int(now)}, skew {skew} s)")
    if claims["iat"] > now + skew:
        _refuse("not_yet_valid", f"issued in the future ({int(claims['iat'])}, now {int(now)}, skew {skew} s)")


def _verify(*, token: str, header: dict, issuer: str, audience: str) -> dict:
    """The token's claims once its signature verifies with the issuer's key named by `kid` (re-reading the JWKS
    once when the cached copy lacks it)."""
    alg, kid = header.get("alg"), header.get("kid")
    try:
        keys = issuer_keys.key_set(issuer)
        jwk = keys.find(kid)
        if jwk is None:
            keys = issuer_keys.key_set(issuer, refresh=True)
            jwk = keys.find(kid)
    except issuer_keys.KeysUnavailable as exc:
        _refuse("unavailable", f"keys unavailable: {exc}", status=503)
    if jwk is None:
        _refuse(NOT_ACCEPTED, f"unknown key id {kid!r} (the issuer's JWKS has {len(keys.keys)} keys)")
    if jwk.get("kty") != ALGORITHMS[alg] or jwk.get("alg", alg) != alg:
        _refuse(NOT_ACCEPTED, f"key {kid!r} is a {jwk.get('kty')}/{jwk.get('alg')} key, the token says {alg}")
    try:
        key = issuer_keys.parsed_key(jwk, alg)
        return jwt.decode(token, key=key, algorithms=[alg], audience=audience, issuer=issuer,
                          leeway=settings.API_CLOCK_SKEW_SECONDS,
                          options={"require": ["exp", "iat", "iss", "aud", "sub"]})
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        _refuse(NOT_ACCEPTED, f"signature or claims rejected: {type(exc).__name__}: {exc}")


def _matches(provider: IdentityProvider, claims: dict) -> bool:
    if claims.get("sub") != provider.subject:
        return False
    return not provider.claim_name or claims.get(provider.claim_name) == provider.claim_value


def _unverified(jwt_token: str, seen: dict) -> dict:
    """The token's header, its claims read without verification kept in `seen` (for the audit of a refusal)."""
    if len(jwt_token) > MAX_JWT_BYTES:
        _refuse("malformed", f"token of {len(jwt_token)} bytes (at most {MAX_JWT_BYTES})", status=400)
    try:
        header = jwt.get_unverified_header(jwt_token)
        seen.update(jwt.decode(jwt_token, options={"verify_signature": False}))
    except jwt.PyJWTError as exc:
        _refuse("malformed", f"not a JWT: {exc}", status=400)
    if not isinstance(header.get("alg"), str) or header["alg"] not in ALGORITHMS:
        _refuse(NOT_ACCEPTED, f"algorithm {header.get('alg')!r} refused (asymmetric algorithms only)")
    return header


def _claimed_agree(claims: dict, *, issuer_uri: str, audience: str) -> None:
    """What the caller sent must agree with what its token claims, and the token must be in date."""
    if claims.get("iss") != issuer_uri:
        _refuse("issuer_mismatch", f"iss {claims.get('iss')!r} differs from issuer_uri {issuer_uri!r}")
    if audience not in _audience_of(claims):
        _refuse("audience", f"audience {audience!r} not in the token's aud {claims.get('aud')!r}")
    _check_times(claims, time.time())


def _providers(*, issuer_uri: str, audience: str) -> tuple[list[IdentityProvider], list[IdentityProvider]]:
    """The identity providers for this issuer and audience, and the enabled ones among them (refused if none)."""
    providers = list(IdentityProvider.objects.filter(issuer_url=issuer_uri, audience=audience))
    if not providers:
        _refuse(NOT_ACCEPTED, "no identity provider for this issuer and audience")
    enabled = [p for p in providers if p.enabled]
    if not enabled:
        _refuse(NOT_ACCEPTED, f"identity provider(s) {', '.join(p.name for p in providers)} disabled")
    return providers, enabled


def _provider_matching(providers: list[IdentityProvider], enabled: list[IdentityProvider],
                       claims: dict) -> IdentityProvider:
    provider = next((p for p in enabled if _matches(p, claims)), None)
    if provider is None:
        disabled = next((p for p in providers if not p.enabled and _matches(p, claims)), None)
        _refuse(NOT_ACCEPTED, f"identity provider {disabled.name} is disabled" if disabled else
                f"no enabled identity provider for subject {claims.get('sub')!r}"
                + (" with its required claim" if any(p.subject == claims.get("sub") for p in enabled) else ""))
    return provider


def _grant(*, provider: IdentityProvider, claims: dict, issuer_uri: str, audience: str, ip: str | None) -> Grant:
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = timezone.now()
    kept = {k: claims[k] for k in KEPT_CLAIMS if k in claims}
    with transaction.atomic():
        portal_token = PortalToken.objects.create(token_hash=token_hash(token), provider=provider,
                                                  subject=claims["sub"], claims=kept, issued_at=now,
                                                  expires_at=now + provider.session)
        audit_record(action="api.exchange_granted", actor=api_actor(provider, claims["sub"]),
                     target_type="portal_token", target_id=str(portal_token.pk),
                     detail={"issuer": issuer_uri, "subject": claims["sub"], "audience": audience,
                             "provider": provider.name, "role": provider.role,
                             "expires_at": portal_token.expires_at.isoformat()}, ip=ip)
    return Grant(token, portal_token, provider)


def sts_exchange(*, audience: str, issuer_uri: str, jwt_token: str, ip: str | None = None) -> Grant:
    """Exchange a workload's platform token for a portal token (raises ExchangeRefused). Checks, in order: an
    asymmetric algorithm; iss == issuer_uri and audience in aud (what the caller sent must agree with its token);
    exp/nbf/iat within API_CLOCK_SKEW_SECONDS; an enabled identity provider for that issuer and audience; the
    signature, with the issuer's key found through discovery; sub (and the provider's extra claim) exactly.
    Granted or refused, the exchange is audited with the issuer and the subject the token claims."""
    seen: dict = {}
    try:
        header = _unverified(jwt_token, seen)
        _claimed_agree(seen, issuer_uri=issuer_uri, audience=audience)
        providers, enabled = _providers(issuer_uri=issuer_uri, audience=audience)
        claims = _verify(token=jwt_token, header=header, issuer=issuer_uri, audience=audience)
        provider = _provider_matching(providers, enabled, claims)
    except ExchangeRefused as refused:
        audit_record(action="api.exchange_refused", actor=Actor.anonymous(ip), target_type="identity_provider",
                     detail={"issuer": issuer_uri[:600], "subject": str(seen.get("sub", ""))[:600],
                             "audience": audience[:600], "reason": refused.reason[:1000], "told": refused.public},
                     ip=ip)
        raise
    return _grant(provider=provider, claims=claims, issuer_uri=issuer_uri, audience=audience, ip=ip)
