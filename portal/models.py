"""The append-only audit trail: each event is chained to the previous one by HMAC-SHA256 under AUDIT_KEY (events
from before the key, by plain SHA-256: their `scheme` says which)."""
import json

from django.db import models

from portal.audit import CURRENT_SCHEME, SCHEME_SHA256, chain_hash


class AuditEvent(models.Model):
    class ActorKind(models.TextChoices):
        STAFF = "staff", "Staff"
        CUSTOMER = "customer", "Customer"
        SYSTEM = "system", "System"
        ANONYMOUS = "anonymous", "Anonymous visitor"

    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    at = models.DateTimeField(db_index=True, editable=False)
    actor_kind = models.CharField(max_length=16, choices=ActorKind.choices)
    actor_id = models.CharField(max_length=64, blank=True)
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    tenant_id = models.CharField(max_length=64, blank=True, help_text="Entra tenant GUID, if any")
    detail = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)
    scheme = models.PositiveSmallIntegerField(default=CURRENT_SCHEME, editable=False,
                                              help_text="1: unkeyed SHA-256 (before AUDIT_KEY), 2: HMAC-SHA256")

    class Meta:
        ordering = ["-seq"]
        # The list pages by seq (its unique index); action is filtered by prefix (a pattern-ops index serves = too),
        # tenant_id exactly, newest first. A constraint keeps hash unique without a _like twin nothing reads.
        constraints = [models.UniqueConstraint(fields=["hash"], name="auditevent_hash_unique")]
        indexes = [models.Index(fields=["action"], opclasses=["varchar_pattern_ops"], name="audit_action_prefix"),
                   models.Index(fields=["tenant_id", "seq"], name="audit_tenant_seq")]

    def __str__(self):
        return f"#{self.seq} {self.action} by {self.actor_label or self.actor_kind}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValueError("Audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValueError("Audit events are append-only")

    def canonical(self) -> str:
        """The event's content as canonical JSON: the input of its hash, so any edit changes the hash. Keyed events
        cover their scheme too (legacy ones keep the content they were hashed with)."""
        content = {
            "seq": self.seq,
            "at": self.at.isoformat(timespec="microseconds"),
            "actor_kind": self.actor_kind,
            "actor_id": self.actor_id,
            "actor_label": self.actor_label,
            "action": self.action,
            "target_type": self.target_type,
            "target_id": self.target_id,
            "tenant_id": self.tenant_id,
            "detail": self.detail,
            "ip": self.ip,
        }
        if self.scheme != SCHEME_SHA256:
            content["scheme"] = self.scheme
        return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)

    def compute_hash(self, key: bytes | None = None) -> str:
        return chain_hash(self.scheme, self.prev_hash, self.canonical(), key)
from portal.verify_models import AuditVerification  # noqa: E402,F401  (runs of the chain's verification)
