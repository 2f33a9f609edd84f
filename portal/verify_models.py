"""Runs of the audit chain's verification: which events each one re-hashed, the head it reached, and what it found.

A run that found the chain intact up to (through_seq, through_hash), starting from genesis or from an earlier such run,
is a *verified point*: the next incremental run re-hashes only the events after it. Each point is signed with
AUDIT_KEY (`sig`), so a row written into the database by hand cannot move the point past an edited event."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditVerification(models.Model):
    class Mode(models.TextChoices):
        FULL = "full", "Full re-verification"
        INCREMENTAL = "incremental", "New events since the last verified point"
        QUICK = "quick", "From the newest checkpoint"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        INTACT = "intact", "Intact"
        BROKEN = "broken", "Broken"
        FAILED = "failed", "Could not finish"

    mode = models.CharField(max_length=16, choices=Mode.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    requested_label = models.CharField(max_length=200, blank=True)
    from_seq = models.PositiveBigIntegerField(default=1, help_text="the first event re-hashed")
    through_seq = models.PositiveBigIntegerField(default=0, help_text="the last event re-hashed (0: none)")
    through_hash = models.CharField(max_length=64, blank=True)
    events_total = models.PositiveBigIntegerField(default=0, help_text="events to re-hash when it started")
    checked = models.PositiveBigIntegerField(default=0)
    legacy = models.PositiveBigIntegerField(default=0)
    checkpoints = models.PositiveIntegerField(default=0, help_text="checkpoints whose signature verified")
    problems = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True)
    sig = models.CharField(max_length=64, blank=True, help_text="HMAC of the verified point under AUDIT_KEY")
    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["status", "-through_seq"], name="auditverify_status_through")]

    def __str__(self):
        return f"Audit verification #{self.pk} ({self.mode}, {self.status})"

    @property
    def running(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def percent(self) -> int:
        if not self.running:
            return 100
        return min(99, round(100 * self.checked / self.events_total)) if self.events_total else 0
