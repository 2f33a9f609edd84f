"""`manage.py rollups_backfill`: the token-test rollups (outcomes per hour and day, hop latency per hour) computed
from the tests and steps stored, for what was finished before live maintenance began. Idempotent."""
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from exchange.rollups import rollups_backfill
from portal.services import Actor


class Command(BaseCommand):
    help = ("Fill the token-test rollups for the hours and days that have none yet (and have ended); with --replace, "
            "recompute them all from --since on (stop the workers first).")

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO date or datetime (UTC unless it says otherwise); default: all")
        parser.add_argument("--replace", action="store_true",
                            help="recompute existing rollups too (counts of tests whose steps were pruned are lost)")

    def handle(self, *args, since=None, replace=False, **options):
        start = None
        if since:
            try:
                start = datetime.fromisoformat(since)
            except ValueError as exc:
                raise CommandError(f"--since {since!r} is not an ISO date or datetime (e.g. 2026-11-01)") from exc
            if timezone.is_naive(start):
                start = start.replace(tzinfo=UTC)
        written = rollups_backfill(actor=Actor.system("manage.py rollups_backfill"), now=timezone.now(),
                                   since=start, replace=replace)
        self.stdout.write(f"rollups written: {written['outcome_periods']} hour/day periods of outcomes, "
                          f"{written['latency_hours']} hours of hop latency")
