"""Writes of the portal app: the one way an audit event is recorded, checkpoints of the chain, and staff accounts."""
import hashlib
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from portal import audit, throttle
from portal.audit import CURRENT_SCHEME, GENESIS_HASH
from portal.models import AuditEvent
from portal.roles import ROLES

# pg_advisory_xact_lock key: serialises appends so two writers never chain onto the same previous event.
_AUDIT_LOCK_KEY = 0x617564_6974


# Callables user -> dict | None that apps above portal register (signin: the directory identity of a staff user);
# what they return is recorded with each event of that actor, under detail["actor_directory"].
STAFF_ACTOR_ENRICHERS: list = []


@dataclass(frozen=True)
class Actor:
    kind: str
    id: str = ""
    label: str = ""
    directory: dict | None = field(default=None, compare=False)

    @classmethod
    def staff(cls, user) -> "Actor":
        directory = {k: v for enrich in STAFF_ACTOR_ENRICHERS for k, v in (enrich(user) or {}).items()}
        return cls(AuditEvent.ActorKind.STAFF, str(user.pk), user.get_username(), directory or None)

    @classmethod
    def customer(cls, ip: str | None) -> "Actor":
        return cls(AuditEvent.ActorKind.CUSTOMER, "", f"customer at {ip or 'unknown address'}")

    @classmethod
    def anonymous(cls, ip: str | None) -> "Actor":
        return cls(AuditEvent.ActorKind.ANONYMOUS, "", f"visitor at {ip or 'unknown address'}")

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(AuditEvent.ActorKind.SYSTEM, "", label)


def client_ip(request) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy rewrites it.
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    action: str,
    actor: Actor,
    target_type: str = "",
    target_id: str = "",
    tenant_id: str = "",
    detail: dict | None = None,
    ip: str | None = None,
) -> AuditEvent:
    """Append one event to the chain (its hash covers the previous event's hash and its own canonical JSON).

    Inside a caller's transaction it joins it (no savepoint): the event and what it records commit together."""
    return audit_record_many([{"action": action, "actor": actor, "target_type": target_type, "target_id": target_id,
                               "tenant_id": tenant_id, "detail": detail, "ip": ip}])[0]


def audit_record_many(entries: list[dict]) -> list[AuditEvent]:
    """Append events in the order given, each chained to the one before: one lock, one read of the chain's end and
    one insert for all of them (a batch of token tests audits its outcomes together). Each entry takes the keyword
    arguments of audit_record()."""
    if not entries:
        return []
    with transaction.atomic(savepoint=False):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_AUDIT_LOCK_KEY])
        last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
        seq, prev_hash = (last["seq"], last["hash"]) if last else (0, GENESIS_HASH)
        events, now, key = [], timezone.now(), audit.audit_key()
        for entry in entries:
            actor = entry["actor"]
            seq += 1
            event = AuditEvent(
                seq=seq,
                at=now,
                actor_kind=actor.kind,
                actor_id=actor.id[:64],
                actor_label=actor.label[:200],
                action=entry["action"],
                target_type=entry.get("target_type", ""),
                target_id=str(entry.get("target_id", ""))[:64],
                tenant_id=str(entry.get("tenant_id") or ""),
                detail={**(entry.get("detail") or {}), **({"actor_directory": actor.directory}
                                                            if actor.directory else {})},
                ip=entry.get("ip"),
                prev_hash=prev_hash,
                scheme=CURRENT_SCHEME,
            )
            event.full_clean(exclude=["hash", "prev_hash", "seq", "at", "scheme"])
            event.hash = prev_hash = event.compute_hash(key)
            events.append(event)
        AuditEvent.objects.bulk_create(events)
    return events


def _chain_head() -> tuple[int, str, int]:
    last = AuditEvent.objects.order_by("-seq").values("seq", "hash").first()
    if last is None:
        return 0, GENESIS_HASH, 0
    return last["seq"], last["hash"], AuditEvent.objects.count()


def audit_checkpoint_write(*, reason: str, skip_if_unchanged: bool = False) -> audit.Checkpoint | None:
    """Sign the chain's current head and append it to the checkpoint store (AUDIT_CHECKPOINT_DIR), chained to the
    previous checkpoint. The scheduled run skips it when nothing was recorded since the last one."""
    return audit.checkpoint_append(read_head=_chain_head, reason=reason, skip_if_unchanged=skip_if_unchanged)


def _refusal_now() -> float:
    return time.time()


def audit_refusal_record(*, user, method: str, path: str, route: str, reason: str, ip: str | None) -> AuditEvent | None:
    """A refused (403) staff request, aggregated: the first refusal per user, method, page and window
    (AUDIT_REFUSAL_WINDOW_SECONDS) is recorded; later ones only count in the shared cache, and that count is recorded
    with the first refusal of a later window (`previous`). Events stay bounded however often a page is refused."""
    window_seconds = max(1, settings.AUDIT_REFUSAL_WINDOW_SECONDS)
    window = int(_refusal_now() // window_seconds)
    subject = hashlib.sha256(f"{user.pk}|{method}|{route}".encode()).hexdigest()[:24]
    counter, last_window_key = f"audit-refused:{subject}:{window}", f"audit-refused-last:{subject}"
    keep = 86400 + 2 * window_seconds
    if not cache.add(counter, 1, timeout=keep):
        try:
            cache.incr(counter)
        except ValueError:  # expired between add and incr
            cache.add(counter, 1, timeout=keep)
        return None
    detail = {"method": method, "path": path[:300], "route": route, "reason": reason[:300],
              "window_seconds": window_seconds}
    last_window = cache.get(last_window_key)
    if last_window is not None and last_window != window:
        count = cache.get(f"audit-refused:{subject}:{last_window}")
        if count:
            detail["previous"] = {"window_start": datetime.fromtimestamp(last_window * window_seconds, UTC)
                                  .isoformat(timespec="seconds"), "count": count}
    cache.set(last_window_key, window, timeout=keep)
    return audit_record(action="access.refused", actor=Actor.staff(user), target_type="route", target_id=route[:64],
                        detail=detail, ip=ip)


def staff_user_create(*, username: str, role: str, password: str, email: str = "", actor: Actor | None = None):
    """Create a staff account holding exactly one role."""
    if role not in ROLES:
        raise ValueError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}")
    User = get_user_model()
    with transaction.atomic():
        user = User(username=username, email=email, is_staff=(role == "admin"))
        user.set_password(password)
        user.full_clean()
        user.save()
        user.groups.add(Group.objects.get_or_create(name=role)[0])  # get_or_create: a flushed test database
        audit_record(
            action="staff.created",
            actor=actor or Actor.system("manage.py"),
            target_type="user",
            target_id=str(user.pk),
            detail={"username": username, "role": role},
        )
    return user


def login_unlock(*, target: str, actor: Actor, ip: str | None = None) -> list[str]:
    """Clear the sign-in lock and failure count of an account (a username) or a client address. Returns the scopes
    that were locked ("account", "address"); audited either way."""
    target = target.strip()[:150]
    if not target:
        raise ValueError("Name a username or an IP address to unlock.")
    locked = throttle.login_unlock_cache(target)
    audit_record(action="auth.login_unlocked", actor=actor, target_type="user", detail={
        "target": target, "was_locked": locked}, ip=ip)
    return locked
