"""The audit chain's verification, step by step: the checkpoint store, where the walk starts (genesis, the newest
matching checkpoint, or a verified point), the walk over the events, and what the table's end says."""
from collections.abc import Callable
from dataclasses import dataclass

from portal import audit
from portal.audit import GENESIS_HASH
from portal.models import AuditEvent

WALK_CHUNK = 5000  # events read at a time
PROGRESS_EVERY = 20_000  # events between two progress callbacks


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int  # events re-hashed
    problem: str = ""  # the first problem
    seq: int | None = None  # the first event concerned, if any
    problems: tuple[str, ...] = ()
    checkpoints: int = 0  # checkpoints whose signature verified
    newest_checkpoint: audit.Checkpoint | None = None
    started_at: int = 1  # the first event re-hashed (later than 1 when verifying from a checkpoint or a point)
    legacy: int = 0  # events still on the unkeyed SHA-256 links of before AUDIT_KEY
    through_seq: int = 0  # the last event re-hashed (or the point started from, when nothing was new)
    through_hash: str = GENESIS_HASH


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


@dataclass
class _Cursor:
    """Where the walk stands: the next event expected, the hash it must link to, the highest scheme seen."""

    seq: int = 1
    prev_hash: str = GENESIS_HASH
    top_scheme: int = audit.SCHEME_SHA256
    checked: int = 0
    legacy: int = 0


def audit_chain_verify(*, full: bool = True, since: tuple[int, str] | None = None,
                       progress: Callable[[int], None] | None = None) -> ChainReport:
    """Walk the chain in order and hold it against the signed checkpoints outside the database.

    Reports every problem found (the first one in `problem`): an event missing, out of order, altered or re-hashed
    without the key, a scheme downgraded; an event that differs from what a checkpoint signed (the chain rewritten);
    a tail or the whole table deleted (the newest checkpoint names a head the table no longer reaches); a checkpoint
    missing, altered or signed with another key. Where the walk starts: genesis (full); `since` = (seq, hash) of a
    verified point, whose event is re-hashed again and must still carry that hash; or, with full=False, the newest
    checkpoint that still matches the table. Events before the start are not re-hashed (each checkpoint's head is
    still compared with the table). `progress(checked)` is called every PROGRESS_EVERY events."""
    key = audit.audit_key()
    problems = _Problems()
    checkpoints, by_head = _checkpoint_store(problems, key)
    if since is not None:
        cursor = _start_at_point(problems, by_head, since)
    elif not full:
        cursor = _start_at_checkpoint(problems, by_head)
    else:
        cursor = _Cursor()
    started_at = cursor.seq
    last = _walk(problems, key, cursor, by_head, progress)
    newest = max(checkpoints, key=lambda c: (c.head_seq, c.n), default=None)
    _check_tail(problems, newest, last[0])
    found = problems.done()
    return ChainReport(ok=not found, checked=cursor.checked, problem=found[0][0] if found else "",
                       seq=next((seq for _, seq in found if seq is not None), None),
                       problems=tuple(message for message, _ in found), checkpoints=len(checkpoints),
                       newest_checkpoint=newest, started_at=started_at, legacy=cursor.legacy,
                       through_seq=last[0], through_hash=last[1])


def _checkpoint_store(problems: _Problems, key: bytes):
    """Step 1: the checkpoints whose signature holds (the store's own problems told), by the head they sign."""
    checkpoints, store_problems = audit.checkpoints_check(audit.checkpoints_read(), key)
    for message in store_problems:
        problems.add(message)
    by_head: dict[int, list[audit.Checkpoint]] = {}
    for checkpoint in checkpoints:
        by_head.setdefault(checkpoint.head_seq, []).append(checkpoint)
    return checkpoints, by_head


def _compare_heads_before(problems: _Problems, by_head: dict, seq: int, heads: dict[int, str] | None = None):
    """The checkpoints signing events before `seq` (which the walk will not reach) against the table."""
    earlier = [head for head in by_head if head and head < seq]
    if heads is None:
        heads = dict(AuditEvent.objects.filter(seq__in=earlier).values_list("seq", "hash"))
    for head in sorted(earlier):
        _compare_with_checkpoints(problems, head, heads.get(head), by_head[head])


def _start_at_checkpoint(problems: _Problems, by_head: dict) -> _Cursor:
    """Step 2 (quick): after the newest checkpoint whose head still matches the table."""
    heads = dict(AuditEvent.objects.filter(seq__in=list(by_head)).values_list("seq", "hash"))
    cursor = _Cursor()
    for seq in sorted(by_head, reverse=True):
        if seq and all(c.head_hash == heads.get(seq) for c in by_head[seq]):
            scheme = AuditEvent.objects.values_list("scheme", flat=True).get(seq=seq)
            cursor = _Cursor(seq=seq + 1, prev_hash=heads[seq], top_scheme=scheme)
            break
    _compare_heads_before(problems, by_head, cursor.seq, heads)
    return cursor


def _start_at_point(problems: _Problems, by_head: dict, since: tuple[int, str]) -> _Cursor:
    """Step 2 (incremental): at a verified point's event, which must still carry the hash it had then."""
    seq, verified_hash = since
    if not seq:
        return _Cursor()
    event = AuditEvent.objects.filter(seq=seq).values("prev_hash", "hash", "scheme").first()
    if event is None or event.get("hash") != verified_hash:
        problems.add(f"event #{seq} is {'gone' if event is None else 'changed'} since it was verified: the chain "
                     f"was rewritten at or before #{seq}", seq)
    if event is None:
        return _Cursor(seq=seq + 1, prev_hash=verified_hash, top_scheme=audit.CURRENT_SCHEME)
    _compare_heads_before(problems, by_head, seq)
    previous = AuditEvent.objects.filter(seq=seq - 1).values_list("scheme", flat=True).first()
    return _Cursor(seq=seq, prev_hash=event["prev_hash"], top_scheme=previous or audit.SCHEME_SHA256)


def _walk(problems: _Problems, key: bytes, cursor: _Cursor, by_head: dict, progress) -> tuple[int, str]:
    """Step 3: re-hash every event from the cursor on, in order; returns the last event's (seq, hash)."""
    last = (cursor.seq - 1, cursor.prev_hash)
    for event in _events_from(cursor.seq):
        _check_event(problems, key, cursor, event)
        if event.seq in by_head:
            _compare_with_checkpoints(problems, event.seq, event.hash, by_head[event.seq])
        cursor.prev_hash, cursor.seq, cursor.checked = event.hash, event.seq + 1, cursor.checked + 1
        last = (event.seq, event.hash)
        if progress is not None and cursor.checked % PROGRESS_EVERY == 0:
            progress(cursor.checked)
    return last


def _events_from(seq: int):
    """Events from `seq` on, in keyset pages of WALK_CHUNK: each page a short query of its own (no server-side cursor
    held open, WITH HOLD, materialising the whole trail on PostgreSQL), so a long walk can report progress."""
    while True:
        page = list(AuditEvent.objects.filter(seq__gte=seq).order_by("seq")[:WALK_CHUNK])
        yield from page
        if len(page) < WALK_CHUNK:
            return
        seq = page[-1].seq + 1


def _check_event(problems: _Problems, key: bytes, cursor: _Cursor, event: AuditEvent):
    if event.seq != cursor.seq:
        gap = (f"event #{cursor.seq} is missing" if event.seq == cursor.seq + 1
               else f"events #{cursor.seq}–#{event.seq - 1} are missing")
        problems.add(f"{gap} (next is #{event.seq})", cursor.seq)
    elif event.prev_hash != cursor.prev_hash:
        problems.add(f"event #{event.seq} does not follow #{event.seq - 1} (deleted or reordered)", event.seq)
    if event.scheme not in audit.SCHEMES:
        problems.add(f"event #{event.seq} names an unknown chain scheme {event.scheme}", event.seq)
    else:
        if event.scheme < cursor.top_scheme:
            problems.add(f"event #{event.seq} claims the unkeyed scheme of before AUDIT_KEY after keyed events "
                         "(downgraded to be re-hashed without the key)", event.seq)
        cursor.top_scheme = max(cursor.top_scheme, event.scheme)
        if event.compute_hash(key) != event.hash:
            problems.bad_hash(event.seq)
    cursor.legacy += event.scheme == audit.SCHEME_SHA256


def _check_tail(problems: _Problems, newest: audit.Checkpoint | None, last_seq: int):
    """Step 4: the newest checkpoint names a head the table still reaches."""
    if newest is None or newest.head_seq <= last_seq:
        return
    if not AuditEvent.objects.exists():
        problems.add(f"every event was deleted: checkpoint #{newest.n} of {newest.at} signed a trail of "
                     f"{newest.events} events up to #{newest.head_seq}, and the table is empty", 1)
    else:
        gone = newest.head_seq - last_seq
        problems.add(f"the last {gone} event{'s were' if gone > 1 else ' was'} deleted: checkpoint #{newest.n} of "
                     f"{newest.at} signed event #{newest.head_seq} as the head, the table ends at #{last_seq}",
                     last_seq + 1)


def _compare_with_checkpoints(problems: _Problems, seq: int, table_hash: str | None, signed: list[audit.Checkpoint]):
    for checkpoint in signed:
        if table_hash is not None and checkpoint.head_hash != table_hash:
            problems.add(f"event #{seq} differs from what checkpoint #{checkpoint.n} of {checkpoint.at} signed: the "
                         f"chain was rewritten at or before #{seq}", seq)
