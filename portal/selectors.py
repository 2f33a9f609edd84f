"""Reads of the portal app: the audit trail, its filters, and the verification of its hash chain."""
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from portal import throttle
from portal.chain_verify import ChainReport, audit_chain_verify  # noqa: F401  (the chain's reads live there)
from portal.models import AuditEvent
from portal.verify_models import AuditVerification

AUDIT_KEYS = ("seq",)  # the list's order (newest first) and its keyset cursor


def audit_events(
    *, action: str = "", actor: str = "", tenant_id: str = "", since: datetime | None = None,
    until: datetime | None = None,
) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if action:
        events = events.filter(action__startswith=action)
    if actor:
        events = events.filter(actor_label__icontains=actor)
    if tenant_id:
        events = events.filter(tenant_id=tenant_id)
    if since:
        events = events.filter(at__gte=since)
    if until:
        events = events.filter(at__lt=until)
    return events.order_by("-seq")


@dataclass(frozen=True)
class RecentLock:
    scope: str
    target: str
    failures: int
    at: datetime
    until: str
    active: bool


def login_locks_recent(limit: int = 100) -> list[RecentLock]:
    """Sign-in locks set within the lockout period (from the audit trail), each with whether it still holds."""
    since = timezone.now() - timedelta(seconds=settings.LOGIN_LOCKOUT_SECONDS)
    locks = []
    for event in AuditEvent.objects.filter(action="auth.login_locked", at__gte=since).order_by("-seq")[:limit]:
        scope = event.detail.get("scope", "")
        target = event.detail.get("username" if scope == throttle.ACCOUNT else "address", "")
        value = throttle.account_of(target) if scope == throttle.ACCOUNT else target
        locks.append(RecentLock(scope, target, event.detail.get("failures", 0), event.at, event.detail.get("until", ""),
                                throttle.lock_active(scope=scope, value=value)))
    return locks


def audit_verifications(limit: int) -> list[AuditVerification]:
    return list(AuditVerification.objects.select_related("requested_by")[:limit])


def audit_verification_running() -> AuditVerification | None:
    return AuditVerification.objects.filter(status__in=(AuditVerification.Status.QUEUED,
                                                        AuditVerification.Status.RUNNING)).first()
