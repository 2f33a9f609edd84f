"""`manage.py readyz`: the checks of /readyz (database, broker) for processes that serve no HTTP (worker, beat):
prints the report, exits 1 when one fails. docker-compose uses it as their healthcheck."""
import json

from django.core.management.base import BaseCommand, CommandError

from portal.health import readiness


class Command(BaseCommand):
    help = "Check that the database and the Celery broker are reachable (exit status 1 if not)."
    requires_system_checks = []

    def handle(self, *args, **options):
        report = readiness()
        self.stdout.write(json.dumps(report))
        if report["status"] != "ok":
            raise CommandError("not ready: " + ", ".join(name for name, value in report.items() if value == "unreachable"))
