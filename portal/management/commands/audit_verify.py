"""manage.py audit_verify: walk the audit chain and report the first broken or missing link."""
from django.core.management.base import BaseCommand, CommandError

from portal.selectors import audit_chain_verify


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exit 1 at the first broken or missing link."

    def handle(self, *args, **options):
        report = audit_chain_verify()
        if not report.ok:
            raise CommandError(f"Audit chain broken: {report.problem} ({report.checked} events verified before it)")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {report.checked} events verified."))
