"""Writes of the audit chain's verification: incremental runs from the last verified point (seconds: only new events
are re-hashed), full re-verifications as a background job with progress, each recorded and audited."""
import hashlib
import hmac

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from portal import audit
from portal.chain_verify import audit_chain_verify
from portal.models import AuditEvent
from portal.services import Actor, audit_record
from portal.verify_models import AuditVerification

Mode, Status = AuditVerification.Mode, AuditVerification.Status
POINTS_TRIED = 20  # verified runs looked at, newest point first, for one whose signature holds


def point_signature(run: AuditVerification, key: bytes | None = None) -> str:
    content = f"{run.pk}|{run.mode}|{run.from_seq}|{run.through_seq}|{run.through_hash}"
    return hmac.new(key or audit.audit_key(), b"audit verified point|" + content.encode(), hashlib.sha256).hexdigest()


def verified_point() -> AuditVerification | None:
    """The furthest point up to which every event was re-hashed and found intact, by a full run or a chain of
    incremental runs from one (a run signed with another key, or not at all, is no point)."""
    key = audit.audit_key()
    runs = (AuditVerification.objects.filter(status=Status.INTACT, mode__in=(Mode.FULL, Mode.INCREMENTAL))
            .exclude(sig="").order_by("-through_seq", "-pk")[:POINTS_TRIED])
    return next((run for run in runs if hmac.compare_digest(point_signature(run, key), run.sig)), None)


def audit_verification_create(*, mode: str, user=None, label: str = "") -> AuditVerification:
    """A queued run; a full one is sent to a worker once this transaction commits (portal.tasks)."""
    from portal.tasks import audit_verify_full  # noqa: PLC0415 - the app's own task calls back into this module

    run = AuditVerification.objects.create(mode=mode, requested_by=user,
                                           requested_label=label or (user.get_username() if user else "system"))
    # Audited once it has run ("audit.verified"), not before: an event appended first would take the number of an
    # event cut from the tail, and the run would name a rewrite instead of the deletion.
    if mode == Mode.FULL:
        transaction.on_commit(lambda: audit_verify_full.apply_async((run.pk,), queue=settings.JOBS_QUEUE))
    return run


def audit_verification_execute(*, verification_id: int) -> AuditVerification | None:
    """Claim a queued run (a duplicate delivery finds it taken and does nothing), walk the chain, record the result
    (a verified point when intact) and audit it."""
    now = timezone.now()
    if not AuditVerification.objects.filter(pk=verification_id, status=Status.QUEUED).update(
            status=Status.RUNNING, started_at=now):
        return None
    run = AuditVerification.objects.get(pk=verification_id)
    point = verified_point() if run.mode == Mode.INCREMENTAL else None
    since = (point.through_seq, point.through_hash) if point else None
    if run.mode == Mode.INCREMENTAL and point is None:
        run.mode = Mode.FULL  # nothing verified yet: this run starts from genesis
    first = since[0] if since else 1
    run.from_seq = first
    run.events_total = AuditEvent.objects.filter(seq__gte=first).count()
    run.save(update_fields=["mode", "from_seq", "events_total"])

    def progress(checked: int):
        AuditVerification.objects.filter(pk=run.pk).update(checked=checked)

    try:
        report = audit_chain_verify(full=run.mode != Mode.QUICK, since=since, progress=progress)
    except Exception as exc:
        _record_failure(run, exc)
        raise
    return _record(run, report)


def _record(run: AuditVerification, report, *, audited: bool = True) -> AuditVerification:
    run.status = Status.INTACT if report.ok else Status.BROKEN
    run.from_seq, run.through_seq, run.through_hash = report.started_at, report.through_seq, report.through_hash
    run.checked, run.legacy, run.checkpoints = report.checked, report.legacy, report.checkpoints
    run.problems, run.finished_at = list(report.problems), timezone.now()
    run.save()
    if report.ok and run.mode != Mode.QUICK:
        run.sig = point_signature(run)
        run.save(update_fields=["sig"])
    if not audited:
        return run
    audit_record(action="audit.verified", actor=_actor(run), target_type="auditverification", target_id=str(run.pk),
                 detail={"mode": run.mode, "intact": report.ok, "from_seq": run.from_seq,
                         "through_seq": run.through_seq, "checked": run.checked, "problems": len(report.problems),
                         "first_problem": report.problem[:300]})
    return run


def _record_failure(run: AuditVerification, exc: Exception):
    run.status, run.finished_at = Status.FAILED, timezone.now()
    run.error = f"The verification stopped before the end ({type(exc).__name__}); start it again."
    run.save(update_fields=["status", "finished_at", "error"])


def _actor(run: AuditVerification) -> Actor:
    return Actor.staff(run.requested_by) if run.requested_by else Actor.system(run.requested_label or "system")


def audit_verification_run(*, mode: str, user=None, label: str = "") -> AuditVerification:
    """Create and execute a run here and now (the page's incremental check, the command)."""
    run = audit_verification_create(mode=mode, user=user, label=label)
    return audit_verification_execute(verification_id=run.pk) or run


def audit_verification_record(*, mode: str, report, label: str) -> AuditVerification:
    """Record a verification run made elsewhere (`manage.py audit_verify`), so a full one is a verified point too.
    Not audited: the command leaves the trail exactly as it found it (an event appended after a cut tail would take
    a deleted event's number, and the next run would name a rewrite instead of the deletion)."""
    now = timezone.now()
    run = AuditVerification.objects.create(mode=mode, status=Status.RUNNING, requested_label=label, started_at=now,
                                           events_total=report.checked)
    return _record(run, report, audited=False)

