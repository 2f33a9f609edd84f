"""Writes of the automation API: the token exchange (a workload's platform token for a short-lived portal token),
identity providers, portal tokens, rate limits and idempotency keys. Every write and every exchange is audited."""
import hashlib
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

import jwt
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from api.models import IdempotencyKey, IdentityProvider, PortalToken
from exchange import issuer_keys
from portal.models import AuditEvent
from portal.ratelimit import rate_limit_hit as portal_rate_limit_hit
from portal.services import Actor, audit_record

TOKEN_PREFIX = "kpt_"
MAX_JWT_BYTES = 16 * 1024
# Asymmetric algorithms only: a verifier that accepted HS* could be fooled by an HMAC keyed with the public key.
ALGORITHMS = {"RS256": "RSA", "RS384": "RSA", "RS512": "RSA", "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
              "ES256": "EC", "ES384": "EC", "ES512": "EC", "EdDSA": "OKP"}
# The claims a portal token remembers of the workload token (never the token itself).
KEPT_CLAIMS = ("iss", "sub", "aud", "tid", "oid", "azp", "appid", "xms_mirid", "repository", "ref", "environment",
               "job_workflow_ref", "run_id", "jti", "iat", "exp")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_actor(provider: IdentityProvider, subject: str) -> Actor:
    """API calls are staff actions; the actor is the identity provider and the workload's subject."""
    return Actor(AuditEvent.ActorKind.STAFF, f"idp:{provider.pk}", f"api:{provider.name}:{subject}"[:200])


# --- the exchange --------------------------------------------------------------------------------------------------
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


def sts_exchange(*, audience: str, issuer_uri: str, jwt_token: str, ip: str | None = None) -> Grant:
    """Exchange a workload's platform token for a portal token (raises ExchangeRefused). Checks, in order: an
    asymmetric algorithm; iss == issuer_uri and audience in aud (what the caller sent must agree with its token);
    exp/nbf/iat within API_CLOCK_SKEW_SECONDS; an enabled identity provider for that issuer and audience; the
    signature, with the issuer's key found through discovery; sub (and the provider's extra claim) exactly.
    Granted or refused, the exchange is audited with the issuer and the subject the token claims."""
    claims: dict = {}
    try:
        if len(jwt_token) > MAX_JWT_BYTES:
            _refuse("malformed", f"token of {len(jwt_token)} bytes (at most {MAX_JWT_BYTES})", status=400)
        try:
            header = jwt.get_unverified_header(jwt_token)
            claims = jwt.decode(jwt_token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            _refuse("malformed", f"not a JWT: {exc}", status=400)
        if not isinstance(header.get("alg"), str) or header["alg"] not in ALGORITHMS:
            _refuse(NOT_ACCEPTED, f"algorithm {header.get('alg')!r} refused (asymmetric algorithms only)")
        if claims.get("iss") != issuer_uri:
            _refuse("issuer_mismatch", f"iss {claims.get('iss')!r} differs from issuer_uri {issuer_uri!r}")
        if audience not in _audience_of(claims):
            _refuse("audience", f"audience {audience!r} not in the token's aud {claims.get('aud')!r}")
        _check_times(claims, time.time())
        providers = list(IdentityProvider.objects.filter(issuer_url=issuer_uri, audience=audience))
        if not providers:
            _refuse(NOT_ACCEPTED, "no identity provider for this issuer and audience")
        enabled = [p for p in providers if p.enabled]
        if not enabled:
            _refuse(NOT_ACCEPTED, f"identity provider(s) {', '.join(p.name for p in providers)} disabled")
        claims = _verify(token=jwt_token, header=header, issuer=issuer_uri, audience=audience)
        provider = next((p for p in enabled if _matches(p, claims)), None)
        if provider is None:
            disabled = next((p for p in providers if not p.enabled and _matches(p, claims)), None)
            _refuse(NOT_ACCEPTED, f"identity provider {disabled.name} is disabled" if disabled else
                    f"no enabled identity provider for subject {claims.get('sub')!r}"
                    + (" with its required claim" if any(p.subject == claims.get("sub") for p in enabled) else ""))
    except ExchangeRefused as refused:
        audit_record(action="api.exchange_refused", actor=Actor.anonymous(ip), target_type="identity_provider",
                     detail={"issuer": issuer_uri[:600], "subject": str(claims.get("sub", ""))[:600],
                             "audience": audience[:600], "reason": refused.reason[:1000], "told": refused.public},
                     ip=ip)
        raise
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


# --- portal tokens -------------------------------------------------------------------------------------------------
def portal_token_revoke(*, portal_token: PortalToken, actor: Actor, ip: str | None = None) -> bool:
    """Revoke a portal token (idempotent: False when it was revoked already)."""
    with transaction.atomic():
        revoked = PortalToken.objects.filter(pk=portal_token.pk, revoked_at=None).update(revoked_at=timezone.now())
        if revoked:
            audit_record(action="api.token_revoked", actor=actor, target_type="portal_token",
                         target_id=str(portal_token.pk), detail={"provider": portal_token.provider.name,
                                                                 "subject": portal_token.subject}, ip=ip)
    portal_token.refresh_from_db(fields=["revoked_at"])
    return bool(revoked)


def portal_token_touch(*, portal_token: PortalToken) -> None:
    """Record use, at most once a minute per token (not one write per request)."""
    now = timezone.now()
    if portal_token.last_used_at is None or now - portal_token.last_used_at > timedelta(minutes=1):
        PortalToken.objects.filter(pk=portal_token.pk).update(last_used_at=now)


def portal_tokens_purge(*, older_than_days: int = 30) -> int:
    """Drop expired tokens' rows after a while (the audit trail keeps their story)."""
    return PortalToken.objects.filter(expires_at__lt=timezone.now() - timedelta(days=older_than_days)).delete()[0]


# --- identity providers --------------------------------------------------------------------------------------------
PROVIDER_FIELDS = ("name", "description", "kind", "issuer_url", "audience", "subject", "claim_name", "claim_value",
                   "role", "session_seconds", "enabled")


def identity_provider_create(*, actor: Actor, **fields) -> IdentityProvider:
    provider = IdentityProvider(**fields)
    provider.full_clean()
    with transaction.atomic():
        provider.save()
        audit_record(action="api.provider_created", actor=actor, target_type="identity_provider",
                     target_id=str(provider.pk), detail={f: getattr(provider, f) for f in PROVIDER_FIELDS})
    return provider


def identity_provider_update(*, provider: IdentityProvider, actor: Actor, **fields) -> IdentityProvider:
    """Change a provider; disabling it (or changing what it trusts) revokes its outstanding portal tokens."""
    before = {f: getattr(provider, f) for f in PROVIDER_FIELDS}
    for name, value in fields.items():
        setattr(provider, name, value)
    provider.full_clean()
    changed = {f: [before[f], getattr(provider, f)] for f in PROVIDER_FIELDS if before[f] != getattr(provider, f)}
    trust = {"issuer_url", "audience", "subject", "claim_name", "claim_value", "role"}
    with transaction.atomic():
        provider.save()
        revoked = 0
        if (not provider.enabled and before["enabled"]) or trust & set(changed):
            revoked = provider.tokens.filter(revoked_at=None, expires_at__gt=timezone.now()).update(
                revoked_at=timezone.now())
        audit_record(action="api.provider_updated", actor=actor, target_type="identity_provider",
                     target_id=str(provider.pk), detail={"changed": changed, "tokens_revoked": revoked})
    return provider


def identity_provider_delete(*, provider: IdentityProvider, actor: Actor) -> None:
    with transaction.atomic():
        audit_record(action="api.provider_deleted", actor=actor, target_type="identity_provider",
                     target_id=str(provider.pk), detail={f: getattr(provider, f) for f in PROVIDER_FIELDS})
        provider.delete()


# --- rate limits -----------------------------------------------------------------------------------------------------
def rate_limit_hit(*, key: str, limit: int, actor: Actor, ip: str | None = None) -> int | None:
    """Count one request against `key` in the shared cache for the current minute. Returns the seconds to wait when
    over `limit` (the first refusal of a minute is audited), else None."""
    hit = portal_rate_limit_hit(scope="api", key=key, limit=limit)
    if not hit.refused:
        return None
    if hit.first_refusal:
        audit_record(action="api.rate_limited", actor=actor, detail={"limit_per_minute": limit}, ip=ip)
    return hit.retry_after


# --- idempotency -----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Replay:
    status: int | None  # None: the first request with this key is still running
    body: dict | None
    same_request: bool


def idempotency_claim(*, owner: str, key: str, method: str, path: str, request_hash: str) -> Replay | None:
    """Claim `key` for this request; None when it is new (the caller runs the request, then idempotency_store, in
    the same transaction), else what was recorded for it (expired keys are forgotten)."""
    horizon = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    IdempotencyKey.objects.filter(owner=owner, key=key, created_at__lt=horizon).delete()
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(owner=owner, key=key, method=method, path=path[:300],
                                          request_hash=request_hash)
        return None
    except IntegrityError:
        found = IdempotencyKey.objects.filter(owner=owner, key=key).first()
        if found is None:  # expired and deleted by a concurrent request: treat it as running
            return Replay(None, None, True)
        same = (found.method, found.path, found.request_hash) == (method, path[:300], request_hash)
        return Replay(found.status, found.body, same)


def idempotency_store(*, owner: str, key: str, status: int, body: dict | None) -> None:
    IdempotencyKey.objects.filter(owner=owner, key=key).update(status=status, body=body)


def idempotency_purge() -> int:
    horizon = timezone.now() - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    return IdempotencyKey.objects.filter(created_at__lt=horizon).delete()[0]
