"""On SQLite too, triggers refuse UPDATE and DELETE of audit events (PostgreSQL has had its trigger since 0003).

They let a statement through only while portal.audit.audit_maintenance() is active in this process (`manage.py
flush`); outside Django the function they call does not exist, so they refuse there as well. SQLite drops a table's
triggers when Django rebuilds it: a later migration that alters AuditEvent must create them again
(tests/portal/test_audit_append_only.py fails otherwise)."""
from django.db import migrations

CREATE = [
    """CREATE TRIGGER IF NOT EXISTS portal_auditevent_no_update BEFORE UPDATE ON portal_auditevent
       WHEN portal_audit_maintenance() = 0
       BEGIN SELECT RAISE(ABORT, 'portal_auditevent is append-only: UPDATE refused'); END""",
    """CREATE TRIGGER IF NOT EXISTS portal_auditevent_no_delete BEFORE DELETE ON portal_auditevent
       WHEN portal_audit_maintenance() = 0
       BEGIN SELECT RAISE(ABORT, 'portal_auditevent is append-only: DELETE refused'); END""",
]
DROP = ["DROP TRIGGER IF EXISTS portal_auditevent_no_update", "DROP TRIGGER IF EXISTS portal_auditevent_no_delete"]


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in CREATE:
            schema_editor.execute(sql, params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for sql in DROP:
            schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):
    dependencies = [("portal", "0004_auditevent_scheme")]
    operations = [migrations.RunPython(forwards, backwards)]
