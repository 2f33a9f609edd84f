"""Writes of the automation API: identity providers, portal tokens, rate limits and idempotency keys (the token
exchange is api/sts.py). Every write is audited."""
import hashlib
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from api.models import IdempotencyKey, IdentityProvider, PortalToken
from portal.models import AuditEvent
from portal.ratelimit import rate_limit_hit as portal_rate_limit_hit
from portal.services import Actor, audit_record

TOKEN_PREFIX = "kpt_"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_actor(provider: IdentityProvider, subject: str) -> Actor:
    """API calls are staff actions; the actor is the identity provider and the workload's subject."""
    return Actor(AuditEvent.ActorKind.STAFF, f"idp:{provider.pk}", f"api:{provider.name}:{subject}"[:200])


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
