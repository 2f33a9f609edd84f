"""Reads of the portal app: the audit trail, its filters, and the verification of its hash chain."""
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from portal import throttle
from portal.models import AuditEvent
from portal.services import GENESIS_HASH


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
class ChainReport:
    ok: bool
    checked: int
    problem: str = ""
    seq: int | None = None


def audit_chain_verify() -> ChainReport:
    """Walk the chain in order; report the first event whose link or content does not hold."""
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for event in AuditEvent.objects.order_by("seq").iterator(chunk_size=2000):
        if event.seq != expected_seq:
            return ChainReport(False, checked, f"event #{expected_seq} is missing (next is #{event.seq})", expected_seq)
        if event.prev_hash != expected_prev:
            return ChainReport(
                False, checked, f"event #{event.seq} does not follow #{event.seq - 1} (deleted or reordered)", event.seq
            )
        if event.compute_hash() != event.hash:
            return ChainReport(False, checked, f"event #{event.seq} was altered after it was recorded", event.seq)
        expected_prev, expected_seq, checked = event.hash, expected_seq + 1, checked + 1
    return ChainReport(True, checked)


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
