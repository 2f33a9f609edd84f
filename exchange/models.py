"""Home apps, managed identities, their federated credentials, and the token tests that prove the chain works."""
from enum import nonmember

from django.conf import settings
from django.db import models
from django.utils import timezone

from exchange.clouds import CLOUD_CHOICES, CLOUDS
from exchange.profiles import AccessProfile
from portal.choices import BAD, OK, WARN, Badge, ColouredChoices


class HomeApp(models.Model):
    """The MSSP's multi-tenant app registration that customers consent to."""

    class ConsentVersion(models.TextChoices):
        V1 = "v1", "v1 (/adminconsent)"
        V2 = "v2", "v2 (/v2.0/adminconsent with scope)"

    name = models.CharField(max_length=120)
    client_id = models.UUIDField("application (client) id")
    object_id = models.UUIDField("object id", null=True, blank=True)
    home_tenant_id = models.UUIDField("home tenant id")
    cloud = models.CharField(max_length=16, choices=CLOUD_CHOICES, default="global")
    consent_version = models.CharField(max_length=2, choices=ConsentVersion.choices, default=ConsentVersion.V2)
    probe_resource_id = models.CharField(
        "ARM probe", max_length=600, blank=True,
        help_text="Empty: list subscriptions. Otherwise an ARM resource id to GET (e.g. /subscriptions/…).",
    )
    mi_audience = models.CharField(
        "managed-identity token audience", max_length=600, blank=True,
        help_text="Empty: the cloud's exchange audience (api://AzureADTokenExchange). An older setup's custom "
                  "Application ID URI audience goes here, so the workers request their token for it.")
    verify_home_token = models.BooleanField(
        "also prove the FIC in the home tenant", default=True,
        help_text="Adds one home-tenant token request to each test; tells a FIC problem from a consent problem.",
    )
    # As last read from Graph by the inventory sync.
    sign_in_audience = models.CharField(max_length=40, blank=True)
    redirect_uris = models.JSONField(default=list, blank=True)
    graph_synced_at = models.DateTimeField(null=True, blank=True)
    graph_error = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cloud", "client_id"], name="homeapp_unique_client_per_cloud")]
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def cloud_info(self):
        return CLOUDS[self.cloud]

    @property
    def exchange_audience(self) -> str:
        return self.mi_audience or CLOUDS[self.cloud].exchange_audience

    def fics_url(self) -> str:
        """Graph's collection of the app's federated credentials (shown before a change through Graph)."""
        return (f"{self.cloud_info.graph_url}/v1.0/applications/{self.object_id or '{object id}'}"
                "/federatedIdentityCredentials")


class ManagedIdentity(models.Model):
    """A user-assigned managed identity the workers run as; `in_use` marks the one they present."""

    name = models.CharField(max_length=120)
    client_id = models.UUIDField("client id", unique=True)
    principal_id = models.UUIDField("principal (object) id")
    tenant_id = models.UUIDField("tenant id")
    cloud = models.CharField(max_length=16, choices=CLOUD_CHOICES, default="global")
    resource_id = models.CharField(max_length=600, blank=True)
    in_use = models.BooleanField("used by the workers", default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "managed identities"

    def __str__(self):
        return self.name

    @property
    def cloud_info(self):
        return CLOUDS[self.cloud]


class FederatedCredential(models.Model):
    """One FIC of a home app as last read from Microsoft Graph."""

    home_app = models.ForeignKey(HomeApp, on_delete=models.CASCADE, related_name="credentials")
    graph_id = models.CharField(max_length=64)
    name = models.CharField(max_length=120)
    issuer = models.CharField(max_length=600)
    subject = models.CharField(max_length=600)
    audiences = models.JSONField(default=list)
    description = models.CharField(max_length=600, blank=True)
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now)
    removed_at = models.DateTimeField(null=True, blank=True)
    created_by_portal_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["home_app", "graph_id"], name="fic_unique_graph_id")]
        ordering = ["name"]

    def __str__(self):
        return self.name


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


class TokenTestRollup(models.Model):
    """Finished token tests counted per UTC hour and day × outcome × diagnosis code (exchange.rollups keeps them as
    tests finish), so charts never read the tests; kept when old tests' steps are pruned."""

    class Period(models.TextChoices):
        HOUR = "hour", "Hour"
        DAY = "day", "Day"

    period = models.CharField(max_length=4, choices=Period.choices)
    start = models.DateTimeField()
    outcome = models.CharField(max_length=24)  # a TokenTest.Outcome value
    diagnosis_code = models.CharField(max_length=40, blank=True)
    n = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["period", "start", "outcome", "diagnosis_code"],
                                               name="tokentestrollup_bucket")]

    def __str__(self):
        return f"{self.period} {self.start:%Y-%m-%d %H:00} {self.outcome} {self.diagnosis_code}: {self.n}"


class HopLatencyRollup(models.Model):
    """A histogram of each hop's duration per UTC hour: how many steps of `hop` took at most `le_ms` (and more than
    the bucket below), with their total duration; p50/p95 are estimated from it (exchange.rollups)."""

    hour = models.DateTimeField()
    hop = models.CharField(max_length=32)
    le_ms = models.PositiveIntegerField(help_text="the bucket's upper bound; rollups.OVERFLOW_MS for +Inf")
    n = models.PositiveIntegerField(default=0)
    sum_ms = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hour", "hop", "le_ms"], name="hoplatencyrollup_bucket")]

    def __str__(self):
        return f"{self.hour:%Y-%m-%d %H:00} {self.hop} ≤{self.le_ms} ms: {self.n}"
# The emergency stop's model lives in a module of its own (exchange/estop_models.py); it is part of this app.
from exchange.estop_models import EmergencyStop  # noqa: E402

__all__ = ["AccessProfile", "EmergencyStop", "FederatedCredential", "HomeApp", "HopLatencyRollup", "ManagedIdentity", "Sweep",
           "TokenTest", "TokenTestRollup", "TokenTestStep"]
