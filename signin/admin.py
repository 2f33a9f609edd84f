from django.contrib import admin

from signin.models import DirectoryIdentity


@admin.register(DirectoryIdentity)
class DirectoryIdentityAdmin(admin.ModelAdmin):
    list_display = ("upn", "display_name", "object_id", "tenant_id", "roles", "last_signed_in_at")
    search_fields = ("upn", "display_name", "object_id")
    readonly_fields = [f.name for f in DirectoryIdentity._meta.fields]

    def has_add_permission(self, request):
        return False  # made by signing in, never by hand
