"""The audit table refuses UPDATE and DELETE on SQLite and PostgreSQL alike, through raw SQL (triggers), while
`manage.py flush` (the test runner's, or an operator's deliberate reset) still empties it."""
import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from portal.models import AuditEvent
from portal.services import Actor, audit_record


@pytest.mark.django_db
@pytest.mark.parametrize("sql", [
    "UPDATE portal_auditevent SET action = 'test.innocent' WHERE seq = %s",
    "UPDATE portal_auditevent SET hash = prev_hash WHERE seq = %s",
    "DELETE FROM portal_auditevent WHERE seq = %s",
])
def test_raw_sql_update_and_delete_are_refused(sql):
    event = audit_record(action="test.kept", actor=Actor.system("test"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, [event.seq])
    stored = AuditEvent.objects.get(seq=event.seq)
    assert (stored.action, stored.hash) == ("test.kept", event.hash)


@pytest.mark.django_db
def test_deleting_every_event_is_refused():
    audit_record(action="test.one", actor=Actor.system("test"))
    audit_record(action="test.two", actor=Actor.system("test"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_auditevent")
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_flush_still_empties_the_database():
    audit_record(action="test.one", actor=Actor.system("test"))
    call_command("flush", interactive=False, verbosity=0)
    assert not AuditEvent.objects.exists()
    # …and the triggers are still in force afterwards.
    event = audit_record(action="test.after-flush", actor=Actor.system("test"))
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM portal_auditevent WHERE seq = %s", [event.seq])
