"""Reads of the portal app: the audit trail, its filters, and the verification of its hash chain."""
from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

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
