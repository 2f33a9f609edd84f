"""Who a staff account is in the directory: the Entra object id and tenant behind it, as last seen at sign-in."""
from django.conf import settings
from django.db import models


class DirectoryIdentity(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="directory_identity")
    tenant_id = models.UUIDField(help_text="Entra tenant id (tid)")
    object_id = models.UUIDField(help_text="The user's object id in that tenant (oid): the stable key")
    upn = models.CharField("UPN", max_length=255, help_text="preferred_username at the last sign-in")
    display_name = models.CharField(max_length=256, blank=True)
    roles = models.JSONField(default=list, blank=True, help_text="Portal roles granted at the last sign-in")
    first_signed_in_at = models.DateTimeField()
    last_signed_in_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "directory identities"
        constraints = [models.UniqueConstraint(fields=["tenant_id", "object_id"], name="signin_unique_directory_id")]

    def __str__(self):
        return f"{self.upn} ({self.object_id})"

    def as_actor(self) -> dict:
        return {"oid": str(self.object_id), "tid": str(self.tenant_id), "upn": self.upn}
