"""Writes of the portal app: the one way an audit event is recorded, and staff accounts."""
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.utils import timezone

from portal import throttle
from portal.models import AuditEvent
from portal.roles import ROLES

GENESIS_HASH = "0" * 64
# pg_advisory_xact_lock key: serialises appends so two writers never chain onto the same previous event.
_AUDIT_LOCK_KEY = 0x617564_6974


@dataclass(frozen=True)
class Actor:
    kind: str
    id: str = ""
    label: str = ""

    @classmethod
    def staff(cls, user) -> "Actor":
        return cls(AuditEvent.ActorKind.STAFF, str(user.pk), user.get_username())

    @classmethod
    def customer(cls, ip: str | None) -> "Actor":
        return cls(AuditEvent.ActorKind.CUSTOMER, "", f"customer at {ip or 'unknown address'}")

    @classmethod
    def anonymous(cls, ip: str | None) -> "Actor":
        return cls(AuditEvent.ActorKind.ANONYMOUS, "", f"visitor at {ip or 'unknown address'}")

    @classmethod
    def system(cls, label: str = "system") -> "Actor":
        return cls(AuditEvent.ActorKind.SYSTEM, "", label)

    @classmethod
    def of_request(cls, request) -> "Actor":
        if request.user.is_authenticated:
            return cls.staff(request.user)
        return cls.customer(client_ip(request))


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
        events, now = [], timezone.now()
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
                detail=entry.get("detail") or {},
                ip=entry.get("ip"),
                prev_hash=prev_hash,
            )
            event.full_clean(exclude=["hash", "prev_hash", "seq", "at"])
            event.hash = prev_hash = event.compute_hash()
            events.append(event)
        AuditEvent.objects.bulk_create(events)
    return events


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
