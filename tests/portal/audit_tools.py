"""What an attacker with database access does to the audit trail, for the audit tests: statements run past the
append-only triggers (dropped or disabled, then put back), and events re-hashed from a point on."""
import importlib

from django.db import connection

from portal.audit import SCHEME_HMAC, chain_hash
from portal.models import AuditEvent

_SQLITE = importlib.import_module("portal.migrations.0005_audit_append_only_sqlite")


def tamper(sql, params=()):
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE portal_auditevent DISABLE TRIGGER portal_auditevent_append_only")
        else:
            for statement in _SQLITE.DROP:
                cursor.execute(statement)
        cursor.execute(sql, params)
        if connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE portal_auditevent ENABLE TRIGGER portal_auditevent_append_only")
        else:
            for statement in _SQLITE.CREATE:
                cursor.execute(statement)


def rehash_from(seq: int, *, key: bytes | None, scheme: int = SCHEME_HMAC):
    """Recompute every hash from event #seq on, as an attacker who edited #seq would to hide it: with the audit key
    (an insider holding it) or without (key=None: plain SHA-256, or any key but the real one)."""
    events = list(AuditEvent.objects.filter(seq__gte=seq - 1).order_by("seq"))
    prev = events[0].hash if events[0].seq < seq else "0" * 64
    for event in events:
        if event.seq < seq:
            continue
        event.prev_hash, event.scheme = prev, scheme
        prev = chain_hash(scheme, prev, event.canonical(), key or b"a key the attacker guessed")
        tamper("UPDATE portal_auditevent SET prev_hash = %s, hash = %s, scheme = %s WHERE seq = %s",
               [event.prev_hash, prev, scheme, event.seq])
