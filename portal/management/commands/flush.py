"""manage.py flush, allowed past the SQLite triggers that keep the audit trail append-only (PostgreSQL's TRUNCATE
never fires its row trigger). Emptying the database is deliberate; the checkpoints will then report every event gone."""
from django.core.management.commands.flush import Command as FlushCommand

from portal.audit import audit_maintenance


class Command(FlushCommand):
    def handle(self, **options):
        with audit_maintenance():
            return super().handle(**options)
