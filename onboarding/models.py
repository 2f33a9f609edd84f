"""Customers, their tenants (with lifecycle facts from which status is derived) and consent links."""
from enum import nonmember

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from exchange.clouds import CLOUD_CHOICES, CLOUDS
from exchange.models import TokenTest
from portal.choices import BAD, MUTED, OK, WARN, Badge, ColouredChoices


class Tag(models.Model):
    """A label on customers and tenants (onboarding.tags): filters the lists, scopes sweeps, routes alerts."""

    name = models.CharField(max_length=64, unique=True, validators=[RegexValidator(
        r"^[a-z0-9][a-z0-9._:-]*$", "A tag is lowercase letters, digits, and . _ : - (e.g. tier-1).")])

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Customer(models.Model):
    name = models.CharField(max_length=200, unique=True)
    contact_name = models.CharField(max_length=200, blank=True)
    contact_email = models.EmailField(blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    tags = models.ManyToManyField(Tag, blank=True, related_name="customers")
    archived_at = models.DateTimeField(null=True, blank=True)  # hidden from lists; its tenants offboarded
    access_profile = models.ForeignKey("exchange.AccessProfile", null=True, blank=True, on_delete=models.PROTECT,
                                       related_name="customers", verbose_name="agreed access",
                                       help_text="The roles and scopes agreed with the customer; empty: the default "
                                                 "profile.")

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class TenantStatus(ColouredChoices):
    DRAFT = "draft", "Draft"
    INVITED = "invited", "Invited"
    CONSENT_RECEIVED = "consent_received", "Consent received"
    VERIFIED = "verified", "Verified"
    NO_ROLE = "no_role", TokenTest.Outcome.NO_ROLE.label
    FAILING = "failing", "Failing"
    DECLINED = "declined", "Declined"
    OFFBOARDED = "offboarded", "Offboarded"
    COLOURS = nonmember({"draft": MUTED, "invited": WARN, "consent_received": WARN, "verified": OK, "no_role": WARN,
                         "failing": BAD, "declined": BAD, "offboarded": MUTED})


# CustomerTenant.status as conditions the database evaluates, in order: a tenant has the first status whose condition
# holds. The property below applies the same rules to one row in Python (tests/onboarding/test_status_rules.py checks
# that both agree on every combination of facts).
_S = TenantStatus
STATUS_RULES = [
    (_S.OFFBOARDED, Q(offboarded_at__isnull=False)),
    (_S.VERIFIED, Q(last_outcome=TokenTest.Outcome.VERIFIED)),
    (_S.NO_ROLE, Q(last_outcome=TokenTest.Outcome.NO_ROLE)),
    (_S.DECLINED, Q(declined_at__isnull=False) & (Q(consent_received_at__isnull=True)
                                                   | Q(declined_at__gt=F("consent_received_at")))),
    (_S.FAILING, ~Q(last_outcome="") & (Q(consent_received_at__isnull=False) | Q(verified_at__isnull=False))),
    (_S.CONSENT_RECEIVED, Q(consent_received_at__isnull=False)),
    (_S.INVITED, Q(invited_at__isnull=False)),
    (_S.DRAFT, Q()),
]


class CustomerTenantQuerySet(models.QuerySet):
    def with_status(self):
        """Each tenant's status as the `state` column (for filtering, sorting and counting in SQL)."""
        return self.annotate(state=Case(*(When(condition, then=Value(name)) for name, condition in STATUS_RULES[:-1]),
                                        default=Value(_S.DRAFT), output_field=models.CharField()))

    def with_status_in(self, *statuses: str):
        return self.with_status().filter(state__in=statuses)


class CustomerTenant(models.Model):
    Status = TenantStatus

    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="tenants")
    tenant_id = models.UUIDField("tenant id")
    cloud = models.CharField(max_length=16, choices=CLOUD_CHOICES, default="global")
    primary_domain = models.CharField(max_length=255, blank=True)
    display_name = models.CharField(max_length=255, blank=True)
    region = models.CharField(max_length=16, blank=True, help_text="tenant_region_scope from discovery")
    home_app = models.ForeignKey("exchange.HomeApp", on_delete=models.PROTECT, related_name="tenants")
    created_at = models.DateTimeField(default=timezone.now)
    # Lifecycle facts, each written by the service that witnessed it.
    invited_at = models.DateTimeField(null=True, blank=True)
    consent_received_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    offboarded_at = models.DateTimeField(null=True, blank=True)
    removal_confirmed_at = models.DateTimeField(null=True, blank=True)
    # Health, kept by the token-test service when a test finishes (cheap to list for thousands of tenants).
    last_tested_at = models.DateTimeField(null=True, blank=True)
    last_outcome = models.CharField(max_length=24, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    # The latest test whatever its outcome: a check that could not reach Microsoft ("transient") is shown beside the
    # last definitive outcome above, never in its place (onboarding.receivers).
    last_check_at = models.DateTimeField(null=True, blank=True)
    last_check_outcome = models.CharField(max_length=24, blank=True, choices=TokenTest.Outcome.choices)
    tags = models.ManyToManyField(Tag, blank=True, related_name="tenants")  # its customer's tags apply too

    objects = CustomerTenantQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["cloud", "tenant_id"], name="tenant_unique_per_cloud")]
        # The tenants page sorts on these (onboarding.tenant_selectors).
        indexes = [models.Index(fields=["primary_domain"], name="tenant_domain_idx"),
                   models.Index(fields=["last_success_at"], name="tenant_last_success_idx"),
                   models.Index(fields=["failing_since"], name="tenant_failing_since_idx")]
        ordering = ["customer__name", "primary_domain"]

    def __str__(self):
        return self.primary_domain or self.display_name or str(self.tenant_id)

    @property
    def cloud_info(self):
        return CLOUDS[self.cloud]

    @property
    def active(self) -> bool:
        return self.offboarded_at is None

    @property
    def testing_ended(self) -> bool:
        """Offboarded and the app's removal confirmed: never tested again."""
        return self.offboarded_at is not None and self.removal_confirmed_at is not None

    @property
    def status(self) -> str:
        """Derived from the lifecycle facts and the latest token test outcome, never typed in."""
        S = self.Status
        if self.offboarded_at:
            return S.OFFBOARDED
        if self.last_outcome == TokenTest.Outcome.VERIFIED:
            return S.VERIFIED
        if self.last_outcome == TokenTest.Outcome.NO_ROLE:
            return S.NO_ROLE
        if self.declined_at and (not self.consent_received_at or self.declined_at > self.consent_received_at):
            return S.DECLINED
        if self.last_outcome and (self.consent_received_at or self.verified_at):
            return S.FAILING
        if self.consent_received_at:
            return S.CONSENT_RECEIVED
        if self.invited_at:
            return S.INVITED
        return S.DRAFT

    @property
    def last_outcome_choice(self) -> "TokenTest.Outcome | None":
        return TokenTest.Outcome.of(self.last_outcome)

    @property
    def last_check_note(self) -> str:
        """What the latest check said when it was no news about the tenant, shown beside the status (which stays the
        last definitive one): Microsoft did not answer, or our new credential is still propagating."""
        outcome = TokenTest.Outcome.of(self.last_check_outcome)
        if outcome is None or outcome.definitive:
            return ""
        if outcome == TokenTest.Outcome.TRANSIENT:
            return "last check could not reach Microsoft"
        return f"last check: {outcome.label.lower()}"

    @property
    def status_choice(self) -> TenantStatus:
        """The status with its label and badge colour (`.label`, `.colour`)."""
        return self.Status(self.status)

    @property
    def status_label(self) -> str:
        return self.status_choice.label

    @property
    def status_colour(self) -> str:
        return self.status_choice.colour


class ConsentLink(models.Model):
    """A tenant-specific admin-consent URL; only the SHA-256 of its `state` is stored."""

    class Outcome(ColouredChoices):
        PENDING = "pending", "Not used yet"
        ACCEPTED = "accepted", "Consent received"
        DECLINED = "declined", "Declined"
        ERROR = "error", "Error from Microsoft"
        TENANT_MISMATCH = "tenant_mismatch", "Consent from another tenant"
        REVOKED = "revoked", "Revoked"
        COLOURS = nonmember({"pending": WARN, "accepted": OK, "declined": BAD, "error": BAD, "tenant_mismatch": BAD,
                             "revoked": MUTED})

    tenant = models.ForeignKey(CustomerTenant, on_delete=models.CASCADE, related_name="consent_links")
    state_hash = models.CharField(max_length=64, unique=True)
    issued_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=20, choices=Outcome.choices, default=Outcome.PENDING)
    redirect_params = models.JSONField(default=dict, blank=True)
    verification = models.ForeignKey("exchange.TokenTest", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+")

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self):
        return f"Consent link for {self.tenant} ({self.get_outcome_display()})"

    @property
    def usable(self) -> bool:
        return self.used_at is None and self.revoked_at is None and self.expires_at > timezone.now()

    @property
    def badge(self):
        """Its outcome's label and colour; a link never used that has expired says so."""
        if self.outcome == self.Outcome.PENDING and not self.usable:
            return Badge("Expired", MUTED)
        return self.Outcome(self.outcome)


class ConsentCallbackKind(models.TextChoices):
    """What the consent landing page tells the customer (onboarding.services.consent_callback_accept, the views)."""

    ACCEPTED = "accepted", ConsentLink.Outcome.ACCEPTED.label
    DECLINED = "declined", ConsentLink.Outcome.DECLINED.label
    WRONG_ACCOUNT = "wrong_account", "Signed in with an account of another tenant"
    CONSENT_REQUIRED = "consent_required", "Consent required"
    INVALID_REQUEST = "invalid_request", "Invalid request"
    ERROR = "error", ConsentLink.Outcome.ERROR.label
    TENANT_MISMATCH = "tenant_mismatch", ConsentLink.Outcome.TENANT_MISMATCH.label
    MISSING_STATE = "missing_state", "No state"
    UNKNOWN_STATE = "unknown_state", "Unknown state"
    REVOKED = "revoked", ConsentLink.Outcome.REVOKED.label
    REPLAYED = "replayed", "Link already used"
    EXPIRED = "expired", "Link expired"
    RATE_LIMITED = "rate_limited", "Too many requests"
    PROGRESS_EXPIRED = "progress_expired", "Progress page expired"
