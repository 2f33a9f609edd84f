"""The consent landing page's service: Microsoft's redirect after admin consent, validated as lookup → refusal →
record, and the page's rate limit. Every attempt is audited."""
import hashlib
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from exchange.models import TokenTest
from exchange.services import token_test_start
from onboarding.models import ConsentCallbackKind, ConsentLink, CustomerTenant
from onboarding.services import CONTROL_CHARS, state_hash
from portal.ratelimit import RateLimitHit, rate_limit_hit
from portal.services import Actor, audit_record

CALLBACK_FIELDS = ("admin_consent", "tenant", "state", "scope", "error", "error_description", "error_uri")
MAX_PARAM = 1000
STATE_FORMAT = re.compile(r"[A-Za-z0-9_-]{43}")  # what secrets.token_urlsafe(32) gives


def state_hash_prefix(value: str) -> str:
    """The first 8 hex digits of a state's SHA-256: enough to tell attempts apart, useless for replaying one."""
    return hashlib.sha256(value.encode(errors="replace")).hexdigest()[:8]


def sanitise_params(query) -> dict:
    """Only Microsoft's parameters, each capped and stripped of control characters (kept and shown as text).
    `state` is a bearer secret until used: it is never kept, only its hash prefix."""
    clean = {}
    for name in CALLBACK_FIELDS:
        value = query.get(name)
        if value is None:
            continue
        if name == "state":
            clean["state_hash_prefix"] = state_hash_prefix(str(value).strip())
            continue
        value = CONTROL_CHARS.sub("", str(value))
        clean[name] = value[:MAX_PARAM] + ("…" if len(value) > MAX_PARAM else "")
    return clean


K = ConsentCallbackKind
ANSWERED_KINDS = (K.ACCEPTED, K.DECLINED, K.WRONG_ACCOUNT, K.CONSENT_REQUIRED)  # 200: Microsoft answered; else 400
AADSTS_KINDS = {"65004": K.DECLINED, "50020": K.WRONG_ACCOUNT}  # AADSTS codes with a page of their own


@dataclass
class CallbackResult:
    kind: ConsentCallbackKind
    link: ConsentLink | None = None
    params: dict = field(default_factory=dict)
    test: TokenTest | None = None  # the verification token test, once consent is accepted

    @property
    def status_code(self) -> int:
        return 200 if self.kind in ANSWERED_KINDS else 400


def _aadsts(description: str) -> str:
    match = re.search(r"AADSTS(\d+)", description or "")
    return match.group(1) if match else ""


def _callback_audit(kind: str, *, params: dict, ip: str | None, link: ConsentLink | None = None, **detail) -> None:
    audit_record(action=f"consent.{kind}", actor=Actor.customer(ip), target_type="consent_link",
                 target_id=str(link.pk) if link else "", tenant_id=str(link.tenant.tenant_id) if link else "",
                 detail={"params": params, **detail}, ip=ip)


def _callback_link(candidate: str) -> ConsentLink | None:
    """Lookup: the link whose state is exactly `candidate` (no looser lookup, no "first token that looks like ours";
    the value itself is never stored)."""
    if not STATE_FORMAT.fullmatch(candidate):
        return None
    return ConsentLink.objects.select_related("tenant", "tenant__home_app").filter(
        state_hash=state_hash(candidate)).first()


def _callback_refusal(*, candidate: str, link: ConsentLink | None, now) -> tuple[ConsentCallbackKind, dict] | None:
    """Refusal: why the callback is refused before its link is claimed, as (kind, audit detail); None if it is not."""
    if not candidate:
        return K.MISSING_STATE, {}
    if link is None:
        return K.UNKNOWN_STATE, ({} if STATE_FORMAT.fullmatch(candidate) else {"malformed": True})
    for kind, refused in ((K.REVOKED, link.revoked_at is not None), (K.REPLAYED, link.used_at is not None),
                          (K.EXPIRED, link.expires_at <= now)):
        if refused:
            return kind, {}
    return None


def _consent_error_kind(params: dict) -> tuple[ConsentCallbackKind, str]:
    """Microsoft's error redirect as (kind, AADSTS code)."""
    code = _aadsts(params.get("error_description", ""))
    kind = AADSTS_KINDS.get(code) or (
        K.DECLINED if params["error"] == "access_denied" else
        K(params["error"]) if params["error"] in (K.CONSENT_REQUIRED, K.INVALID_REQUEST) else K.ERROR)
    return kind, code


def _callback_record(*, link: ConsentLink, params: dict, ip: str | None, now) -> CallbackResult:
    """Record: claim the link (exactly one request can use a state, even two arriving at once), then record what
    Microsoft said; on consent, start the verification token test."""
    def audit(kind, **detail):
        _callback_audit(kind, params=params, ip=ip, link=link, **detail)

    with transaction.atomic():
        if not ConsentLink.objects.filter(pk=link.pk, used_at=None, revoked_at=None).update(used_at=now):
            audit(K.REPLAYED)
            return CallbackResult(K.REPLAYED, link=link, params=params)
        link.used_at = now
        link.redirect_params = params
        tenant = link.tenant
        if params.get("error"):
            kind, code = _consent_error_kind(params)
            link.outcome = ConsentLink.Outcome.DECLINED if kind == K.DECLINED else ConsentLink.Outcome.ERROR
            link.save(update_fields=["used_at", "redirect_params", "outcome"])
            if kind == K.DECLINED:
                CustomerTenant.objects.filter(pk=tenant.pk).update(declined_at=now)
            audit(kind, aadsts=code)
            return CallbackResult(kind, link=link, params=params)
        returned = (params.get("tenant") or "").lower()
        if params.get("admin_consent", "").lower() != "true" or returned != str(tenant.tenant_id):
            link.outcome = ConsentLink.Outcome.TENANT_MISMATCH
            link.save(update_fields=["used_at", "redirect_params", "outcome"])
            audit(K.TENANT_MISMATCH, expected=str(tenant.tenant_id), returned=returned)
            return CallbackResult(K.TENANT_MISMATCH, link=link, params=params)
        link.outcome = ConsentLink.Outcome.ACCEPTED
        CustomerTenant.objects.filter(pk=tenant.pk).update(consent_received_at=now)
        audit("received")
        # The redirect is no proof (anyone can forge it): the exchange against the tenant is.
        link.verification = token_test_start(tenant=tenant, trigger=TokenTest.Trigger.CONSENT,
                                             actor=Actor.customer(ip))
        link.save(update_fields=["used_at", "redirect_params", "outcome", "verification"])
    return CallbackResult(K.ACCEPTED, link=link, params=params, test=link.verification)


def consent_callback_accept(*, query, ip: str | None) -> CallbackResult:
    """Validate Microsoft's redirect: lookup → refusal → record. On success the consent is recorded and the
    verification token test started."""
    params = sanitise_params(query)
    # Whitespace around the value (a wrapped or pasted link) is dropped; otherwise it must be exactly a state we issued.
    candidate = str(query.get("state") or "").strip()
    link = _callback_link(candidate)
    now = timezone.now()
    refusal = _callback_refusal(candidate=candidate, link=link, now=now)
    if refusal is not None:
        kind, detail = refusal
        _callback_audit(kind, params=params, ip=ip, link=link, **detail)
        return CallbackResult(kind, link=link, params=params)
    return _callback_record(link=link, params=params, ip=ip, now=now)


def consent_rate_limit_hit(*, ip: str | None) -> RateLimitHit:
    """The consent landing page's requests per client address and minute (CONSENT_RATE_LIMIT); the first refusal of
    a minute and address is audited, not every one."""
    hit = rate_limit_hit(scope="consent", key=str(ip), limit=settings.CONSENT_RATE_LIMIT)
    if hit.first_refusal:
        audit_record(action="consent.rate_limited", actor=Actor.customer(ip), ip=ip)
    return hit
