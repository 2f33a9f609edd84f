"""manage.py audit_verify: walk the audit chain, hold it against the signed checkpoints, and report what is wrong."""
from django.core.management.base import BaseCommand, CommandError

from portal.selectors import audit_chain_verify
from portal.verification import audit_verification_record
from portal.verify_models import AuditVerification


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


class Command(BaseCommand):
    help = ("Verify the audit trail's keyed hash chain against the checkpoints in AUDIT_CHECKPOINT_DIR; exit 1 naming "
            "every problem found. The run is recorded (a full one that finds the chain intact is the point the audit page's "
            "incremental check starts from).")

    def add_arguments(self, parser):
        parser.add_argument("--quick", action="store_true",
                            help="re-hash only the events after the newest checkpoint that still matches the table "
                                 "(every checkpoint's head is still compared); the default re-hashes them all")

    def handle(self, *args, quick=False, **options):
        report = audit_chain_verify(full=not quick)
        mode = AuditVerification.Mode.QUICK if quick else AuditVerification.Mode.FULL
        audit_verification_record(mode=mode, report=report, label="manage.py audit_verify")
        newest = report.newest_checkpoint
        if newest is not None:
            self.stdout.write(f"{_n(report.checkpoints, 'checkpoint')} verified; the newest, #{newest.n} of {newest.at}, "
                              f"covers events up to #{newest.head_seq}.")
        else:
            self.stdout.write("No checkpoint yet: only the chain itself was verified.")
        if not report.ok:
            lines = "\n".join(f"  - {problem}" for problem in report.problems)
            raise CommandError(f"Audit chain broken: {report.problem} ({report.checked} events re-hashed)\n{lines}")
        since = f" from #{report.started_at}" if report.started_at > 1 else ""
        legacy = f" ({report.legacy} of them from before AUDIT_KEY, on unkeyed SHA-256 links)" if report.legacy else ""
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {_n(report.checked, 'event')} verified{since}{legacy}."))
