"""The audit list's actor filter (a case-insensitive "contains": UPPER(actor_label) LIKE UPPER('%…%')) through a
trigram index on PostgreSQL, so a rare or absent actor no longer walks the whole trail (1.3 s at a million events;
0.1 ms with it). pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it. Where it cannot be
created the filter still works, by scanning, and the migration says so. Not in the model's state: SQLite has no such
index, and nothing else refers to it."""
from django.db import migrations, transaction

INDEX = "audit_actor_trgm"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):  # a savepoint: a refusal aborts only it
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", params=None)
    except Exception as exc:  # noqa: BLE001 (any refusal: no privilege, extension not installed)
        print(f"\n  pg_trgm unavailable ({exc.__class__.__name__}): the audit actor filter will scan.")
        return
    schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON portal_auditevent "
                          "USING gin (UPPER(actor_label::text) gin_trgm_ops)", params=None)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}", params=None)


class Migration(migrations.Migration):
    dependencies = [("portal", "0006_audit_list_indexes")]
    operations = [migrations.RunPython(forwards, backwards)]
