"""The automation API's trust: identity providers (whose workload tokens it accepts), the short-lived portal tokens
it hands out (only their hash kept) and the idempotency keys of its writes."""
from datetime import timedelta

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from portal.roles import ROLES

MAX_SESSION_SECONDS = 3600


class IdentityProvider(models.Model):
    """A workload platform the portal trusts: tokens from `issuer_url` for `audience` whose `sub` is exactly
    `subject` (and, optionally, whose `claim_name` is exactly `claim_value`) are exchanged for a portal token."""

    class Kind(models.TextChoices):
        AZURE = "azure", "Azure managed identity"
        GITHUB = "github", "GitHub Actions"
        OIDC = "oidc", "Other OIDC issuer"

    name = models.CharField(max_length=120, unique=True)
    description = models.CharField(max_length=600, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.OIDC)
    issuer_url = models.CharField(
        "issuer URL", max_length=600,
        help_text="Exactly the token's iss: https://login.microsoftonline.com/{tenant}/v2.0 (v2 tokens), "
                  "https://sts.windows.net/{tenant}/ (v1), https://token.actions.githubusercontent.com …")
    audience = models.CharField(max_length=600, help_text="The aud the workload requests its token for.")
    subject = models.CharField(
        max_length=600, help_text="Exactly the token's sub: a managed identity's principal (object) id, or "
                                  "repo:OWNER/REPO:ref:refs/heads/main for GitHub Actions.")
    claim_name = models.CharField(max_length=64, blank=True,
                                  help_text="Optional: another claim that must match too (e.g. repository, ref).")
    claim_value = models.CharField(max_length=600, blank=True)
    role = models.CharField(max_length=16, choices=[(r, r.title()) for r in ROLES])
    session_seconds = models.PositiveIntegerField(
        "session lifetime (seconds)", default=900,
        validators=[MinValueValidator(60), MaxValueValidator(MAX_SESSION_SECONDS)])
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["issuer_url", "audience"], name="idp_issuer_audience")]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        if not self.issuer_url.startswith("https://"):
            errors["issuer_url"] = "The issuer must be an https URL (its keys are discovered from it)."
        if bool(self.claim_name) != bool(self.claim_value):
            errors["claim_value"] = "Give both a claim name and its value, or neither."
        if self.claim_name in ("iss", "sub", "aud", "exp", "nbf", "iat"):
            errors["claim_name"] = "That claim is checked already; name another one (e.g. repository)."
        if errors:
            raise ValidationError(errors)

    @property
    def session(self) -> timedelta:
        return timedelta(seconds=min(self.session_seconds, MAX_SESSION_SECONDS))


class PortalToken(models.Model):
    """A portal access token handed out by the exchange: only its SHA-256 is stored."""

    token_hash = models.CharField(max_length=64, unique=True)
    provider = models.ForeignKey(IdentityProvider, on_delete=models.CASCADE, related_name="tokens")
    subject = models.CharField(max_length=600)
    claims = models.JSONField(default=dict, blank=True, help_text="the workload token's non-secret claims")
    issued_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self):
        return f"Portal token #{self.pk} for {self.provider}"

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class IdempotencyKey(models.Model):
    """A write's Idempotency-Key, per caller: the request it was used for and the answer given (replayed on retry)."""

    owner = models.CharField(max_length=128, help_text="the caller: identity provider id and subject digest")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=300)
    request_hash = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(null=True, blank=True, help_text="empty while the request runs")
    body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="idempotency_unique_per_owner")]

    def __str__(self):
        return f"{self.method} {self.path} ({self.key})"
