"""The audit trail's keyed chain and its signed checkpoints outside the database.

Events are chained with HMAC-SHA256 under AUDIT_KEY (scheme 2); events recorded before the key existed keep their
unkeyed SHA-256 links (scheme 1) and stay verifiable. Checkpoints (the chain's head, signed and chained to each other)
are appended to files in AUDIT_CHECKPOINT_DIR, so that a rewritten, cut-off or emptied table disagrees with them."""
import fcntl
import hashlib
import hmac
import json
import os
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

GENESIS_HASH = "0" * 64
SCHEME_SHA256 = 1  # before AUDIT_KEY: sha256(prev_hash + canonical); anyone could recompute it
SCHEME_HMAC = 2  # hmac_sha256(AUDIT_KEY, prev_hash + canonical): recomputing needs the key
CURRENT_SCHEME = SCHEME_HMAC
SCHEMES = (SCHEME_SHA256, SCHEME_HMAC)


def audit_key() -> bytes:
    return settings.AUDIT_KEY.encode()


def key_id(key: bytes | None = None) -> str:
    """A short public name of the key (checkpoints carry it, so a changed key is told apart from a forgery)."""
    return hmac.new(key or audit_key(), b"keyless-portal audit key id", hashlib.sha256).hexdigest()[:12]


def chain_hash(scheme: int, prev_hash: str, canonical: str, key: bytes | None = None) -> str:
    data = (prev_hash + canonical).encode()
    if scheme == SCHEME_SHA256:
        return hashlib.sha256(data).hexdigest()
    if scheme == SCHEME_HMAC:
        return hmac.new(key or audit_key(), data, hashlib.sha256).hexdigest()
    raise ValueError(f"Unknown audit chain scheme {scheme!r}")


# --- append-only on SQLite --------------------------------------------------------------------------------------
# The SQLite triggers (migration 0005) refuse UPDATE/DELETE unless portal_audit_maintenance() answers 1, which it does
# only inside audit_maintenance() in this process (`manage.py flush`, as the test runner uses between tests). Outside
# Django the function does not exist, so the trigger fails there too.
_maintenance: ContextVar[bool] = ContextVar("audit_maintenance", default=False)


def sqlite_register_functions(sender, connection, **kwargs):
    if connection.vendor == "sqlite":
        connection.connection.create_function("portal_audit_maintenance", 0, lambda: int(_maintenance.get()))


@contextmanager
def audit_maintenance():
    token = _maintenance.set(True)
    try:
        yield
    finally:
        _maintenance.reset(token)


# --- checkpoints ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Checkpoint:
    n: int  # 1, 2, 3…: a gap means a checkpoint was removed
    at: str
    head_seq: int  # the newest event covered (0: the trail was empty)
    head_hash: str
    events: int
    reason: str  # schedule | export | manual
    prev: str  # the previous checkpoint's signature ("" for the first): the checkpoints' own chain
    key_id: str
    sig: str = ""

    def signed_content(self) -> str:
        fields = asdict(self)
        fields.pop("sig")
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    def signature(self, key: bytes) -> str:
        return hmac.new(key, self.signed_content().encode(), hashlib.sha256).hexdigest()

    def line(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")) + "\n"


@dataclass(frozen=True)
class StoredCheckpoint:
    checkpoint: Checkpoint | None  # None: the line could not be read
    where: str  # "2026-11-25.jsonl line 3"
    raw: dict | None = None


def checkpoint_dir() -> Path:
    return Path(settings.AUDIT_CHECKPOINT_DIR)


def checkpoints_read(directory: Path | None = None) -> list[StoredCheckpoint]:
    """Every line of every checkpoint file, oldest first (files are named by day, lines appended in order)."""
    directory = directory or checkpoint_dir()
    stored = []
    if not directory.is_dir():
        return stored
    for path in sorted(directory.glob("*.jsonl")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path.name} line {number}"
                try:
                    raw = json.loads(line)
                    checkpoint = Checkpoint(**raw)
                    if not isinstance(checkpoint.n, int) or not isinstance(checkpoint.head_seq, int):
                        raise TypeError("n and head_seq are integers")
                except (ValueError, TypeError):
                    stored.append(StoredCheckpoint(None, where))
                    continue
                stored.append(StoredCheckpoint(checkpoint, where, raw))
    return stored


def _last_readable(directory: Path) -> Checkpoint | None:
    """The newest checkpoint that can be read (the newest day's file first: no need to parse a year of them)."""
    for path in sorted(directory.glob("*.jsonl"), reverse=True):
        for line in reversed(path.read_text(encoding="utf-8", errors="replace").splitlines()):
            try:
                checkpoint = Checkpoint(**json.loads(line))
            except (ValueError, TypeError):
                continue
            if isinstance(checkpoint.n, int) and isinstance(checkpoint.sig, str):
                return checkpoint
    return None


def checkpoint_append(*, read_head: Callable[[], tuple[int, str, int]], reason: str, skip_if_unchanged: bool = False,
                      now: datetime | None = None) -> Checkpoint | None:
    """Sign the chain's head (read by read_head() -> (seq, hash, count) under the store's lock) and append it.

    One JSON line per checkpoint, written with a single O_APPEND write and fsynced; files are never rewritten."""
    directory = checkpoint_dir()
    directory.mkdir(parents=True, exist_ok=True)
    key = audit_key()
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        last = _last_readable(directory)
        head_seq, head_hash, events = read_head()
        if skip_if_unchanged and last and (last.head_seq, last.head_hash) == (head_seq, head_hash):
            return None
        now = now or datetime.now(UTC)
        checkpoint = Checkpoint(
            n=(last.n + 1) if last else 1, at=now.isoformat(timespec="seconds"), head_seq=head_seq,
            head_hash=head_hash, events=events, reason=reason, prev=last.sig if last else "", key_id=key_id(key))
        checkpoint = Checkpoint(**{**asdict(checkpoint), "sig": checkpoint.signature(key)})
        fd = os.open(directory / f"{now:%Y-%m-%d}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            os.write(fd, checkpoint.line().encode())
            os.fsync(fd)
        finally:
            os.close(fd)
    return checkpoint


def checkpoints_check(stored: list[StoredCheckpoint], key: bytes) -> tuple[list[Checkpoint], list[str]]:
    """The checkpoints whose signature holds, and what is wrong with the store: unreadable lines, altered
    checkpoints (bad signature), removed ones (a gap in the numbers or a broken link to the previous one)."""
    good, problems, previous = [], [], None
    own_key_id = key_id(key)
    for item in stored:
        cp = item.checkpoint
        if cp is None:
            problems.append(f"checkpoint store: {item.where} is unreadable (altered or truncated)")
            continue
        expected_n = previous.n + 1 if previous else 1
        if cp.n > expected_n:
            missing = f"#{expected_n}" if cp.n == expected_n + 1 else f"#{expected_n}–#{cp.n - 1}"
            problems.append(f"checkpoint {missing} is missing: {item.where} holds #{cp.n}"
                            + (f", after #{previous.n}" if previous else ", the first one left"))
        elif cp.n < expected_n:
            problems.append(f"checkpoint #{cp.n} ({item.where}) is out of order: #{expected_n} was expected")
        elif cp.prev != (previous.sig if previous else ""):
            problems.append(f"checkpoint #{cp.n} ({item.where}) does not follow #{cp.n - 1}: one was replaced")
        if not (isinstance(cp.sig, str) and hmac.compare_digest(cp.signature(key), cp.sig)):
            if cp.key_id != own_key_id:
                problems.append(f"checkpoint #{cp.n} ({item.where}) was signed with another audit key (key id "
                                f"{cp.key_id}, this one is {own_key_id}): AUDIT_KEY changed, or it is forged")
            else:
                problems.append(f"checkpoint #{cp.n} ({item.where}) was altered: its signature does not verify")
        else:
            good.append(cp)
        previous = cp
    return good, problems
