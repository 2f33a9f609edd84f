"""Background exports of the audit trail and the token tests (CSV or JSON Lines, with their list page's filters): a
job row, a Celery task that writes the file (ops/export_writers.py), a download for the user who asked, files removed
after EXPORT_RETENTION_HOURS. Every step is audited; an audit export also signs a checkpoint and holds exactly the
events it covers. Tokens are never exported: no column holds one (claims and step details are not exported at all)."""
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django import forms
from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from exchange.forms import TokenTestFilterForm
from exchange.selectors import token_tests
from ops.export_models import ExportJob
from ops.export_writers import INT, IP, JSON, PLAIN, TIME, UUID, Column, write_export
from portal.forms import AuditFilterForm
from portal.roles import can
from portal.selectors import audit_events
from portal.services import Actor, audit_checkpoint_write, audit_record

logger = logging.getLogger(__name__)
Status = ExportJob.Status
AUDITED_IDS = 100  # job ids named in one audit event (the counts are always there)
STUCK_GRACE_SECONDS = 300  # past JOBS_TIME_LIMIT_SECONDS, a job still "running" lost its worker


class ExportError(ValueError):
    """An export that cannot start: the message says why, in the user's words."""


@dataclass(frozen=True)
class ExportKind:
    capability: str  # the same as the list page's
    form: type[forms.Form]  # the list page's filter form (its filters() gives the selector's arguments)
    select: object  # filters -> queryset
    columns: list[Column] = field(default_factory=list)
    key: str = "id"  # ascending order of the file, and the keyset of the Python path


KINDS = {
    ExportJob.Kind.AUDIT: ExportKind("audit", AuditFilterForm, audit_events, key="seq", columns=[
        Column("seq", "seq", INT), Column("at", "at", TIME), Column("actor_kind", "actor_kind", PLAIN),
        Column("actor_id", "actor_id"), Column("actor_label", "actor_label"), Column("action", "action"),
        Column("target_type", "target_type"), Column("target_id", "target_id"), Column("tenant_id", "tenant_id"),
        Column("detail", "detail", JSON), Column("ip", "ip", IP), Column("prev_hash", "prev_hash", PLAIN),
        Column("hash", "hash", PLAIN)]),
    ExportJob.Kind.TOKEN_TESTS: ExportKind("view", TokenTestFilterForm, token_tests, columns=[
        Column("id", "id", INT), Column("tenant_id", "tenant__tenant_id", UUID),
        Column("tenant_domain", "tenant__primary_domain"), Column("customer", "tenant__customer__name"),
        Column("trigger", "trigger", PLAIN), Column("status", "status", PLAIN),
        Column("outcome", "outcome", PLAIN),
        Column("diagnosis_code", "diagnosis_code"), Column("attempts", "attempts", INT),
        Column("queued_at", "queued_at", TIME), Column("started_at", "started_at", TIME),
        Column("finished_at", "finished_at", TIME), Column("sweep_id", "sweep_id", INT),
        Column("requested_by", "requested_by__username")]),
}


def export_allowed(user, kind: str) -> bool:
    return kind in KINDS and can(user, KINDS[kind].capability)


def _queryset(job: ExportJob) -> QuerySet:
    spec = KINDS[job.kind]
    form = spec.form(job.filters)
    if not form.is_valid():
        raise ExportError("The filters are no longer valid.")
    return spec.select(**form.filters())


def export_start(*, user, kind: str, fmt: str, params) -> ExportJob:
    """Queue an export of the rows the list page shows with these filters (its GET parameters); the worker starts once
    this transaction commits."""
    if kind not in KINDS or fmt not in ExportJob.Format.values:
        raise ExportError("Unknown export: choose audit events or token tests, as CSV or JSON Lines.")
    form = KINDS[kind].form(params)
    if not form.is_valid():
        wrong = ", ".join(f"{name}: {' '.join(errors)}" for name, errors in form.errors.items())
        raise ExportError(f"The filters are not valid ({wrong}); nothing was exported.")
    filters = {name: str(params[name]) for name in form.fields if params.get(name)}
    with transaction.atomic():
        job = ExportJob.objects.create(kind=kind, format=fmt, filters=filters, requested_by=user)
        audit_record(action="export.requested", actor=Actor.staff(user), target_type="exportjob",
                     target_id=str(job.pk), detail={"kind": kind, "format": fmt, "filters": filters})
        transaction.on_commit(lambda: _send(job.pk))
    return job


def _send(job_id: int) -> None:
    from ops.tasks import export_run  # noqa: PLC0415 - the app's own task calls back into this module

    export_run.apply_async((job_id,), queue=settings.JOBS_QUEUE)


def export_execute(*, job_id: int) -> ExportJob | None:
    """Claim a queued job (a duplicate delivery finds it taken), write its file under EXPORT_DIR (as NAME.part, renamed
    when complete), record rows, size and sha256, and audit the result."""
    if not ExportJob.objects.filter(pk=job_id, status=Status.QUEUED).update(status=Status.RUNNING,
                                                                             started_at=timezone.now()):
        return None
    job = ExportJob.objects.select_related("requested_by").get(pk=job_id)
    directory = Path(settings.EXPORT_DIR)
    name = f"{job.kind}-{job.pk}-{timezone.now():%Y%m%dT%H%M%SZ}.{job.format}"
    part = directory / f"{name}.part"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        rows = _queryset(job)
        if job.kind == ExportJob.Kind.AUDIT:
            checkpoint = audit_checkpoint_write(reason="export")
            rows = rows.filter(seq__lte=checkpoint.head_seq)
            job.checkpoint = {"n": checkpoint.n, "head_seq": checkpoint.head_seq, "head_hash": checkpoint.head_hash}
        job.rows_total = rows.count()
        job.save(update_fields=["checkpoint", "rows_total"])
        written = write_export(rows, KINDS[job.kind].columns, key=KINDS[job.kind].key, fmt=job.format, path=part,
                               progress=lambda n: ExportJob.objects.filter(pk=job_id).update(rows_done=n))
        part.rename(directory / name)
    except Exception as exc:  # noqa: BLE001 - whatever stopped it, the job says so and no partial file stays
        with contextlib.suppress(OSError):
            part.unlink(missing_ok=True)
        logger.exception("export %s failed", job_id)
        return _failed(job, _plain_error(exc))
    job.status, job.finished_at, job.file_name = Status.SUCCEEDED, timezone.now(), name
    job.rows_done, job.size, job.sha256 = written.rows, written.size, written.sha256
    job.save()
    audit_record(action="export.finished", actor=Actor.staff(job.requested_by), target_type="exportjob",
                 target_id=str(job.pk), detail={"kind": job.kind, "format": job.format, "filters": job.filters,
                                                "rows": written.rows, "bytes": written.size,
                                                "sha256": written.sha256, "checkpoint": job.checkpoint})
    return job


def _plain_error(exc: Exception) -> str:
    if isinstance(exc, ExportError):
        return str(exc)
    if type(exc).__name__ == "SoftTimeLimitExceeded":
        return (f"The export took longer than {settings.JOBS_TIME_LIMIT_SECONDS} seconds and was stopped: narrow the "
                "filters (a date range) and start it again.")
    if isinstance(exc, OSError):
        return f"The export file could not be written ({exc.strerror or exc}): tell an administrator."
    return "The export stopped on an unexpected error (logged for the administrators); start it again."


def _failed(job: ExportJob, error: str) -> ExportJob:
    job.status, job.error, job.finished_at = Status.FAILED, error, timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])
    audit_record(action="export.failed", actor=Actor.staff(job.requested_by), target_type="exportjob",
                 target_id=str(job.pk), detail={"kind": job.kind, "format": job.format, "error": error})
    return job


def export_jobs_for(user) -> QuerySet[ExportJob]:
    return ExportJob.objects.filter(requested_by=user)


def export_path(job: ExportJob) -> Path | None:
    """The finished file of a job, if it is still there."""
    if job.status != Status.SUCCEEDED or not job.file_name:
        return None
    path = Path(settings.EXPORT_DIR) / job.file_name
    return path if path.is_file() else None


def export_downloaded(*, job: ExportJob, user, ip: str | None) -> None:
    audit_record(action="export.downloaded", actor=Actor.staff(user), target_type="exportjob", target_id=str(job.pk),
                 detail={"kind": job.kind, "sha256": job.sha256}, ip=ip)


def exports_expire(*, now=None) -> dict:
    """Beat: remove the files of exports older than EXPORT_RETENTION_HOURS, and fail jobs whose worker died (still
    running well past the jobs' time limit), with their partial files. Audited when anything changed."""
    now = now or timezone.now()
    expired = list(ExportJob.objects.filter(status=Status.SUCCEEDED,
                                            finished_at__lt=now - timedelta(hours=settings.EXPORT_RETENTION_HOURS)))
    for job in expired:
        (Path(settings.EXPORT_DIR) / job.file_name).unlink(missing_ok=True)
    ExportJob.objects.filter(pk__in=[j.pk for j in expired]).update(status=Status.EXPIRED)
    stuck_before = now - timedelta(seconds=settings.JOBS_TIME_LIMIT_SECONDS + STUCK_GRACE_SECONDS)
    stuck = list(ExportJob.objects.filter(status=Status.RUNNING, started_at__lt=stuck_before))
    for job in stuck:
        for part in Path(settings.EXPORT_DIR).glob(f"{job.kind}-{job.pk}-*.part"):
            part.unlink(missing_ok=True)
    ExportJob.objects.filter(pk__in=[j.pk for j in stuck], status=Status.RUNNING).update(
        status=Status.FAILED, finished_at=now, error="The worker stopped before the export was finished (restarted "
                                                     "or killed): start the export again.")
    if expired or stuck:
        audit_record(action="export.files_removed", actor=Actor.system("exports"), detail={
            "expired": [j.pk for j in expired][:AUDITED_IDS], "abandoned": [j.pk for j in stuck][:AUDITED_IDS],
            "expired_count": len(expired), "abandoned_count": len(stuck),
            "retention_hours": settings.EXPORT_RETENTION_HOURS})
    return {"expired": len(expired), "abandoned": len(stuck)}
