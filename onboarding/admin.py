"""The Django admin (superusers) for onboarding: every write is audited (portal.admin.AuditedModelAdmin); consent links
are read-only records (their secret is only a hash anyway), deletable with an audit event."""
from django.contrib import admin

from onboarding.models import ConsentLink, Customer, CustomerTenant, Tag
from portal.admin import AuditedModelAdmin


@admin.register(Customer)
class CustomerAdmin(AuditedModelAdmin):
    list_display = ("name", "contact_name", "contact_email", "created_at")
    search_fields = ("name",)


@admin.register(Tag)
class TagAdmin(AuditedModelAdmin):
    search_fields = ("name",)


@admin.register(CustomerTenant)
class CustomerTenantAdmin(AuditedModelAdmin):
    list_display = ("__str__", "customer", "tenant_id", "cloud", "last_outcome", "offboarded_at")
    list_filter = ("cloud", "last_outcome")
    search_fields = ("primary_domain", "tenant_id", "customer__name")


@admin.register(ConsentLink)
class ConsentLinkAdmin(AuditedModelAdmin):
    list_display = ("tenant", "issued_by", "issued_at", "expires_at", "used_at", "revoked_at", "outcome")
    readonly_fields = [f.name for f in ConsentLink._meta.fields]

    def has_add_permission(self, request):
        return False  # links are issued from the tenant's page, where the secret is shown once
