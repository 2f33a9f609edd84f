"""Alerts (what the state watcher noticed), where they go (channels and routes) and each delivery's fate."""
from django.db import models
from django.utils import timezone


class AlertKind(models.TextChoices):
    LOST_ACCESS = "lost_access", "A tenant lost access"
    RESTORED = "restored", "Access restored"
    CONSENT = "consent_received", "Consent received"
    FINDING = "finding", "A credential finding appeared"
    FINDING_RESOLVED = "finding_resolved", "A credential finding was resolved"
    OUTAGE = "outage", "An endpoint outage"
    OUTAGE_OVER = "outage_over", "An endpoint outage ended"
    DIGEST = "digest", "Daily digest"


class Channel(models.Model):
    """Where alerts are delivered: a list of e-mail addresses, or a webhook endpoint signed with its own secret."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook"

    class Format(models.TextChoices):
        GENERIC = "generic", "Generic JSON"
        SLACK = "slack", "Slack incoming webhook"
        TEAMS = "teams", "Teams incoming webhook (MessageCard)"

    name = models.CharField(max_length=120, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    addresses = models.JSONField(default=list, blank=True, help_text="e-mail: the recipients")
    url = models.URLField(max_length=600, blank=True, help_text="webhook: the endpoint")
    format = models.CharField(max_length=16, choices=Format.choices, default=Format.GENERIC)
    # Stored because every delivery is signed with it; shown once at creation, never again, never exported/audited.
    secret = models.CharField(max_length=128, blank=True, editable=False)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def target(self) -> str:
        return ", ".join(self.addresses) if self.kind == self.Kind.EMAIL else self.url


class Route(models.Model):
    """Which alerts go to a channel: one customer's, those of the tenants (or customers) carrying a tag (a tenant carries
    its own tags and its customer's: onboarding.tags), or every customer's (neither set); `kinds` empty = every
    kind."""

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="routes")
    customer = models.ForeignKey("onboarding.Customer", null=True, blank=True, on_delete=models.CASCADE,
                                 related_name="+")
    tag = models.CharField(max_length=64, blank=True)
    kinds = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["channel__name", "pk"]

    def __str__(self):
        return f"{self.channel} <- {self.customer or (f'tag {self.tag}' if self.tag else 'all customers')}"

    def matches(self, alert, tags: frozenset[str] = frozenset()) -> bool:
        """`tags`: the alert's tenant's effective tags (or its customer's), as ops.services.routing reads them."""
        if self.kinds and alert.kind not in self.kinds:
            return False
        if self.customer_id is None and not self.tag:
            return True  # every customer, and the alerts of no customer (outages, findings, digest)
        if self.customer_id is not None and self.customer_id != alert.customer_id:
            return False
        return not self.tag or self.tag in tags


class TenantWatch(models.Model):
    """The last state of a tenant the watcher acted on; a transition bumps `version` (the alert's dedupe key)."""

    tenant = models.OneToOneField("onboarding.CustomerTenant", on_delete=models.CASCADE, primary_key=True,
                                  related_name="+")
    state = models.CharField(max_length=24)
    consent_at = models.DateTimeField(null=True, blank=True)
    version = models.PositiveIntegerField(default=0)
    changed_at = models.DateTimeField(default=timezone.now)

    def __str__(self):
        return f"tenant #{self.tenant_id}: {self.state}"


class FindingWatch(models.Model):
    """A lint finding of a home app as first seen; `resolved_at` when it disappeared."""

    key = models.CharField(max_length=200, unique=True)
    app_id = models.PositiveBigIntegerField()
    code = models.CharField(max_length=40)
    first_seen = models.DateTimeField(default=timezone.now)
    resolved_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return self.key


class OutageWatch(models.Model):
    """An endpoint outage (per cloud and endpoint) as the watcher saw it open and close."""

    cloud = models.CharField(max_length=16)
    endpoint = models.CharField(max_length=40)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cloud", "endpoint"], condition=models.Q(closed_at=None),
                                               name="ops_one_open_outage_per_endpoint")]

    def __str__(self):
        return f"{self.endpoint} ({self.cloud})"


class Alert(models.Model):
    kind = models.CharField(max_length=24, choices=AlertKind.choices)
    dedupe_key = models.CharField(max_length=200, unique=True)
    customer = models.ForeignKey("onboarding.Customer", null=True, blank=True, on_delete=models.SET_NULL,
                                 related_name="+")
    tenant = models.ForeignKey("onboarding.CustomerTenant", null=True, blank=True, on_delete=models.SET_NULL,
                               related_name="+")
    title = models.CharField(max_length=300)
    text = models.TextField()
    facts = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        # The history filtered by kind, by keyset (ops.selectors.ALERT_KEYS); unfiltered it reads created_at's index.
        indexes = [models.Index(fields=["kind", "created_at", "id"], name="alert_kind_created")]

    def __str__(self):
        return self.title


class Delivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    alert = models.ForeignKey(Alert, on_delete=models.CASCADE, related_name="deliveries")
    channel = models.ForeignKey(Channel, null=True, on_delete=models.SET_NULL, related_name="deliveries")
    channel_kind = models.CharField(max_length=16)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_error = models.CharField(max_length=300, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["alert", "channel"], name="ops_one_delivery_per_channel")]
        ordering = ["pk"]

    def __str__(self):
        return f"{self.channel_kind} #{self.pk}: {self.status}"
from ops.export_models import ExportJob  # noqa: E402,F401  (background exports: ops/exports.py)
