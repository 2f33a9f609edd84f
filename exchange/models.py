"""The token tests that prove the chain works, their steps and the sweeps that fan them out; home apps, managed
identities and their federated credentials (exchange/registry_models.py), access profiles (exchange/profiles.py), the
rollups and the emergency stop are re-exported here: `from exchange.models import …` finds every model of the app."""
from enum import nonmember

from django.conf import settings
from django.db import models
from django.utils import timezone

from exchange.profiles import AccessProfile
from exchange.registry_models import FederatedCredential, HomeApp, ManagedIdentity
from portal.choices import BAD, OK, WARN, Badge, ColouredChoices


class Sweep(models.Model):
    """A fan-out of token tests over every active tenant."""

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Started by staff"
        SCHEDULE = "schedule", "Scheduled"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    started_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    succeeded = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]

    def __str__(self):
        return f"Sweep #{self.pk} ({self.done}/{self.total})"

    @property
    def running(self) -> bool:
        return self.finished_at is None

    @property
    def percent(self) -> int:
        return 100 if not self.total else round(100 * self.done / self.total)


class TokenTest(models.Model):
    """One run of the chain for one tenant: IMDS → (home tenant) → customer tenant → ARM probe."""

    class Trigger(models.TextChoices):
        MANUAL = "manual", "Test now"
        CONSENT = "consent", "Consent verification"
        SWEEP = "sweep", "Sweep"
        SCHEDULE = "schedule", "Schedule"

    class Status(ColouredChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        COLOURS = nonmember({"queued": WARN, "running": WARN, "succeeded": OK, "failed": BAD})

    class Outcome(ColouredChoices):
        VERIFIED = "verified", "Access verified"
        NO_ROLE = "no_role", "Consented, no Azure role"
        NOT_CONSENTED = "not_consented", "Not consented"
        MISCONFIGURED = "misconfigured", "Credential misconfigured"
        PROPAGATING = "propagating", "New credential propagating"
        TENANT_NOT_FOUND = "tenant_not_found", "Tenant not found"
        BLOCKED = "blocked", "Blocked by policy"
        TRANSIENT = "transient", "Service unavailable"
        ERROR = "error", "Unrecognised error"
        COLOURS = nonmember({"verified": OK, "no_role": WARN, "propagating": WARN, "transient": WARN, "error": BAD,
                             "not_consented": BAD, "misconfigured": BAD, "tenant_not_found": BAD, "blocked": BAD})

        @property
        def definitive(self) -> bool:
            """Says something about the tenant: not "transient" (no answer), nor "propagating" (our new FIC)."""
            return self not in (TokenTest.Outcome.TRANSIENT, TokenTest.Outcome.PROPAGATING)

    PENDING = (Status.QUEUED, Status.RUNNING)
    FINISHED = (Status.SUCCEEDED, Status.FAILED)

    tenant = models.ForeignKey("onboarding.CustomerTenant", on_delete=models.CASCADE, related_name="token_tests",
                               db_index=False)  # tokentest_tenant_recent leads with it
    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    sweep = models.ForeignKey(Sweep, null=True, blank=True, on_delete=models.SET_NULL, related_name="tests",
                              db_index=False)  # tokentest_sweep_queued leads with it
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    outcome = models.CharField(max_length=24, choices=Outcome.choices, blank=True)
    diagnosis_code = models.CharField(max_length=40, blank=True)
    error = models.JSONField(default=dict, blank=True, help_text="raw error/error_codes when not recognised")
    attempts = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(null=True, blank=True, help_text="a retry is scheduled for this time")
    queued_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True, help_text="the first attempt's start")
    finished_at = models.DateTimeField(null=True, blank=True)
    # A running attempt: its own start, and a lease its worker renews while the chain runs. A worker that dies stops
    # renewing; whoever finds the lease expired (a re-delivered message, the reaper) may take the test over.
    attempt_started_at = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=64, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-queued_at", "-pk"]
        # What the pages read (the list newest first, by tenant, outcome or diagnosis; the latest finished); no _like
        # twins (no LIKE on these columns).
        indexes = [models.Index(fields=["tenant", "-queued_at"], name="tokentest_tenant_recent"),
                   models.Index(fields=["status", "lease_expires_at"], name="tokentest_status_lease"),
                   models.Index(fields=["queued_at", "id"], name="tokentest_queued"),
                   models.Index(fields=["outcome", "queued_at", "id"], name="tokentest_outcome_queued"),
                   models.Index(fields=["diagnosis_code", "queued_at", "id"], name="tokentest_diagnosis_queued"),
                   models.Index(fields=["finished_at"], name="tokentest_finished"),
                   models.Index(fields=["sweep", "queued_at", "id"], name="tokentest_sweep_queued")]

    def __str__(self):
        return f"Token test #{self.pk} ({self.status})"

    @property
    def finished(self) -> bool:
        return self.status in self.FINISHED

    @property
    def status_choice(self) -> "TokenTest.Status":
        return self.Status(self.status)

    @property
    def outcome_choice(self) -> "TokenTest.Outcome | None":
        return self.Outcome.of(self.outcome)

    @property
    def confirms_removal(self) -> bool:
        """An offboarded tenant's test that found the app gone: what offboarding asked for, not a failure."""
        offboarded = self.tenant.offboarded_at
        return self.outcome == self.Outcome.NOT_CONSENTED and offboarded is not None and self.queued_at >= offboarded

    @property
    def badge(self):
        """What the test's badge says (`.label`, `.colour`): its outcome, its status until it has one."""
        if self.confirms_removal:
            return REMOVAL_CONFIRMED
        return self.outcome_choice or self.status_choice

    @property
    def duration_ms(self) -> int | None:
        if self.started_at and self.finished_at:
            return int((self.finished_at - self.started_at).total_seconds() * 1000)
        return None


REMOVAL_CONFIRMED = Badge("Removal confirmed", OK)


class TokenTestStep(models.Model):
    """One hop of a token test, with the non-secret claims of the token it obtained (never the token)."""

    test = models.ForeignKey(TokenTest, on_delete=models.CASCADE, related_name="steps")
    attempt = models.PositiveSmallIntegerField(default=1)
    name = models.CharField(max_length=32)
    started_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    ok = models.BooleanField(default=False)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    error = models.CharField(max_length=64, blank=True)
    message = models.TextField(blank=True)
    trace_id = models.CharField(max_length=64, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True)
    claims = models.JSONField(default=dict, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["test", "attempt", "started_at", "pk"]

    def __str__(self):
        return f"{self.name} ({'ok' if self.ok else self.error_code or 'failed'})"


# The rollups and the emergency stop live in modules of their own (exchange/rollup_models.py, estop_models.py); they
# are part of this app.
from exchange.estop_models import EmergencyStop  # noqa: E402
from exchange.rollup_models import HopLatencyRollup, TokenTestRollup  # noqa: E402

__all__ = ["AccessProfile", "EmergencyStop", "FederatedCredential", "HomeApp", "HopLatencyRollup", "ManagedIdentity", "Sweep",
           "TokenTest", "TokenTestRollup", "TokenTestStep"]
