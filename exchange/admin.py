"""The Django admin (superusers): every model of exchange, read-mostly; the portal's own pages are the way to work.
Every write here is audited (portal.admin.AuditedModelAdmin); runs and sweeps are read-only records."""
from django.contrib import admin

from exchange.models import (
    AccessProfile,
    FederatedCredential,
    HomeApp,
    ManagedIdentity,
    Sweep,
    TokenTest,
    TokenTestStep,
)
from portal.admin import AuditedModelAdmin


@admin.register(HomeApp)
class HomeAppAdmin(AuditedModelAdmin):
    list_display = ("name", "client_id", "home_tenant_id", "cloud", "consent_version", "graph_synced_at")


@admin.register(AccessProfile)
class AccessProfileAdmin(AuditedModelAdmin):
    list_display = ("name", "is_default", "created_at")


@admin.register(ManagedIdentity)
class ManagedIdentityAdmin(AuditedModelAdmin):
    list_display = ("name", "client_id", "principal_id", "tenant_id", "cloud", "in_use")


@admin.register(FederatedCredential)
class FederatedCredentialAdmin(AuditedModelAdmin):
    list_display = ("name", "home_app", "issuer", "subject", "first_seen", "last_seen", "removed_at")
    list_filter = ("home_app",)


class StepInline(admin.TabularInline):
    model = TokenTestStep
    extra = 0
    readonly_fields = [f.name for f in TokenTestStep._meta.fields]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(TokenTest)
class TokenTestAdmin(AuditedModelAdmin):
    list_display = ("pk", "tenant", "trigger", "status", "outcome", "diagnosis_code", "attempts", "queued_at")
    list_filter = ("status", "outcome", "trigger")
    inlines = [StepInline]
    readonly_fields = [f.name for f in TokenTest._meta.fields]

    def has_add_permission(self, request):
        return False  # runs are started from the portal, on a worker


@admin.register(Sweep)
class SweepAdmin(AuditedModelAdmin):
    list_display = ("pk", "trigger", "started_at", "finished_at", "total", "done", "succeeded", "failed")
    readonly_fields = [f.name for f in Sweep._meta.fields]

    def has_add_permission(self, request):
        return False  # sweeps are started from the portal or by beat
