"""Reads of the portal app: the audit trail, its filters, and the verification of its hash chain."""
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from portal import audit, throttle
from portal.audit import GENESIS_HASH
from portal.models import AuditEvent

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
class ChainReport:
    ok: bool
    checked: int  # events re-hashed
    problem: str = ""  # the first problem
    seq: int | None = None  # the first event concerned, if any
    problems: tuple[str, ...] = ()
    checkpoints: int = 0  # checkpoints whose signature verified
    newest_checkpoint: audit.Checkpoint | None = None
    started_at: int = 1  # the first event re-hashed (later than 1 when verifying from a checkpoint)
    legacy: int = 0  # events still on the unkeyed SHA-256 links of before AUDIT_KEY


class _Problems:
    """Problems in order, at most LIMIT told (then how many more); a run of consecutive events whose hash does not
    verify is told as one."""

    LIMIT = 50

    def __init__(self):
        self.items: list[tuple[str, int | None]] = []
        self._run: list[int] = []
        self._more = 0

    def add(self, message: str, seq: int | None = None):
        self._close_run()
        self._append(message, seq)

    def _append(self, message: str, seq: int | None):
        if len(self.items) < self.LIMIT:
            self.items.append((message, seq))
        else:
            self._more += 1

    def bad_hash(self, seq: int):
        if self._run and self._run[-1] == seq - 1:
            self._run.append(seq)
            return
        self._close_run()
        self._run = [seq]

    def _close_run(self):
        if self._run:
            first, last = self._run[0], self._run[-1]
            if first == last:
                message = (f"event #{first} was altered after it was recorded: its hash does not verify with the "
                           "audit key")
            else:
                message = (f"events #{first}–#{last} do not verify with the audit key: altered, or the chain was "
                           f"recomputed from #{first} on without the key")
            self._append(message, first)
            self._run = []

    def done(self):
        self._close_run()
        if self._more:
            self.items.append((f"… and {self._more} more problem{'s' if self._more > 1 else ''}", None))
        return self.items


def audit_chain_verify(*, full: bool = True) -> ChainReport:
    """Walk the chain in order and hold it against the signed checkpoints outside the database.

    Reports every problem found (the first one in `problem`): an event missing, out of order, altered or re-hashed
    without the key, a scheme downgraded; an event that differs from what a checkpoint signed (the chain rewritten);
    a tail or the whole table deleted (the newest checkpoint names a head the table no longer reaches); a checkpoint
    missing, altered or signed with another key. With full=False the events before the newest checkpoint that still
    matches the table are not re-hashed (each checkpoint's head is still compared)."""
    key = audit.audit_key()
    checkpoints, checkpoint_problems = audit.checkpoints_check(audit.checkpoints_read(), key)
    problems = _Problems()
    for message in checkpoint_problems:
        problems.add(message)
    by_head: dict[int, list[audit.Checkpoint]] = {}
    for checkpoint in checkpoints:
        by_head.setdefault(checkpoint.head_seq, []).append(checkpoint)
    newest = max(checkpoints, key=lambda c: (c.head_seq, c.n), default=None)

    expected_prev, expected_seq, top_scheme = GENESIS_HASH, 1, audit.SCHEME_SHA256
    if not full:
        heads = dict(AuditEvent.objects.filter(seq__in=list(by_head)).values_list("seq", "hash"))
        for seq in sorted(by_head, reverse=True):
            if seq and all(c.head_hash == heads.get(seq) for c in by_head[seq]):
                expected_prev, expected_seq = heads[seq], seq + 1
                top_scheme = AuditEvent.objects.get(seq=seq).scheme
                break
        for seq in sorted(by_head):
            if seq < expected_seq and seq:
                _compare_with_checkpoints(problems, seq, heads.get(seq), by_head[seq])

    checked = legacy = 0
    start, last_seq = expected_seq, expected_seq - 1
    for event in AuditEvent.objects.filter(seq__gte=expected_seq).order_by("seq").iterator(chunk_size=2000):
        if event.seq != expected_seq:
            gap = (f"event #{expected_seq} is missing" if event.seq == expected_seq + 1
                   else f"events #{expected_seq}–#{event.seq - 1} are missing")
            problems.add(f"{gap} (next is #{event.seq})", expected_seq)
        elif event.prev_hash != expected_prev:
            problems.add(f"event #{event.seq} does not follow #{event.seq - 1} (deleted or reordered)", event.seq)
        if event.scheme not in audit.SCHEMES:
            problems.add(f"event #{event.seq} names an unknown chain scheme {event.scheme}", event.seq)
        else:
            if event.scheme < top_scheme:
                problems.add(f"event #{event.seq} claims the unkeyed scheme of before AUDIT_KEY after keyed events "
                             "(downgraded to be re-hashed without the key)", event.seq)
            top_scheme = max(top_scheme, event.scheme)
            if event.compute_hash(key) != event.hash:
                problems.bad_hash(event.seq)
        legacy += event.scheme == audit.SCHEME_SHA256
        if event.seq in by_head:
            _compare_with_checkpoints(problems, event.seq, event.hash, by_head[event.seq])
        expected_prev, expected_seq, last_seq, checked = event.hash, event.seq + 1, event.seq, checked + 1

    if newest is not None and newest.head_seq > last_seq:
        if not AuditEvent.objects.exists():
            problems.add(f"every event was deleted: checkpoint #{newest.n} of {newest.at} signed a trail of "
                         f"{newest.events} events up to #{newest.head_seq}, and the table is empty", 1)
        else:
            gone = newest.head_seq - last_seq
            problems.add(f"the last {gone} event{'s were' if gone > 1 else ' was'} deleted: checkpoint #{newest.n} of "
                         f"{newest.at} signed event #{newest.head_seq} as the head, the table ends at #{last_seq}",
                         last_seq + 1)
    found = problems.done()
    return ChainReport(ok=not found, checked=checked, problem=found[0][0] if found else "",
                       seq=next((seq for _, seq in found if seq is not None), None),
                       problems=tuple(message for message, _ in found), checkpoints=len(checkpoints),
                       newest_checkpoint=newest, started_at=start,
                       legacy=legacy)


def _compare_with_checkpoints(problems: _Problems, seq: int, table_hash: str | None, signed: list[audit.Checkpoint]):
    for checkpoint in signed:
        if table_hash is not None and checkpoint.head_hash != table_hash:
            problems.add(f"event #{seq} differs from what checkpoint #{checkpoint.n} of {checkpoint.at} signed: the "
                         f"chain was rewritten at or before #{seq}", seq)


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
