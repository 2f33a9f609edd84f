from django.contrib import admin

from ops.models import Alert, Delivery


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ("created_at", "kind", "title")
    list_filter = ("kind",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = ("alert", "channel_kind", "status", "attempts", "sent_at")
    list_filter = ("status", "channel_kind")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
