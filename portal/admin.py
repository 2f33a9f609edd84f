from django.contrib import admin

from portal.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only, even for superusers."""

    list_display = ("seq", "at", "actor_label", "action", "target_type", "target_id", "tenant_id")
    list_filter = ("actor_kind",)
    search_fields = ("action", "actor_label", "target_id", "tenant_id")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
