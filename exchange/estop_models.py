"""The emergency stop: one row per time it was engaged, with who, when and why, the FICs it deleted (to re-create
them), and the stage of its restart. exchange.services.estop owns every write; exchange.models re-exports the model."""
from django.conf import settings
from django.db import models
from django.utils import timezone


class EmergencyStop(models.Model):
    """While a row is `current`, exchanges are stopped as far as its stage says (services/estop.py)."""

    class Stage(models.TextChoices):
        STOPPED = "stopped", "Stopped: no token test or sweep runs"
        CANARY = "canary", "Restart stage 1: credentials back, canary test only"
        TESTS = "tests", "Restart stage 2: token tests run, sweeps still stopped"
        ENDED = "ended", "Ended: everything runs again"

    reason = models.TextField()
    engaged_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    engaged_by_label = models.CharField(max_length=150, help_text="the actor as audited (a command names no user)")
    engaged_at = models.DateTimeField(default=timezone.now)
    stage = models.CharField(max_length=16, choices=Stage.choices, default=Stage.STOPPED)
    # True on the row in force, NULL once ended: a unique NULL-able flag lets only one stop be in force at a time.
    current = models.BooleanField(null=True, default=True, unique=True)
    # Each FIC deleted through Graph: {app, app_name, name, issuer, subject, audiences, description, graph_id,
    # deleted: bool, error}. Graph has no "disable" for a FIC: the restart re-creates it from these values.
    deleted_fics = models.JSONField(default=list, blank=True)
    canary_test = models.ForeignKey("exchange.TokenTest", null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    # Each stage as it happened: {stage, at, by, ok, summary, details}.
    history = models.JSONField(default=list, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-engaged_at"]

    def __str__(self):
        return f"Emergency stop of {self.engaged_at:%Y-%m-%d %H:%M} ({self.get_stage_display()})"
