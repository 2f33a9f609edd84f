"""Background exports of the audit trail and the token tests: one row per job (what, for whom, how far, the file)."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class ExportJob(models.Model):
    class Kind(models.TextChoices):
        AUDIT = "audit", "Audit events"
        TOKEN_TESTS = "tokentests", "Token tests"

    class Format(models.TextChoices):
        CSV = "csv", "CSV"
        JSONL = "jsonl", "JSON Lines"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Ready"
        FAILED = "failed", "Failed"
        EXPIRED = "expired", "Expired (file removed)"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    format = models.CharField(max_length=8, choices=Format.choices)
    filters = models.JSONField(default=dict, blank=True, help_text="the list page's filter parameters, as given")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows_total = models.PositiveBigIntegerField(default=0, help_text="rows matching when the job started")
    rows_done = models.PositiveBigIntegerField(default=0)
    file_name = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    checkpoint = models.JSONField(default=dict, blank=True, help_text="audit exports: the checkpoint they hold")
    error = models.TextField(blank=True, help_text="what went wrong, in plain words")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["requested_by", "-created_at"], name="exportjob_user_recent"),
                   models.Index(fields=["status", "finished_at"], name="exportjob_status_finished")]

    def __str__(self):
        return f"Export #{self.pk} ({self.get_kind_display()}, {self.get_format_display()})"

    @property
    def running(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def percent(self) -> int:
        if self.status == self.Status.SUCCEEDED:
            return 100
        return min(99, round(100 * self.rows_done / self.rows_total)) if self.rows_total else 0
