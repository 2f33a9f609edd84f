"""The Django admin (superusers) for onboarding; consent links are read-only (their secret is only a hash anyway)."""
from django.contrib import admin

from onboarding.models import ConsentLink, Customer, CustomerTenant


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "contact_name", "contact_email", "created_at")
    search_fields = ("name",)


@admin.register(CustomerTenant)
class CustomerTenantAdmin(admin.ModelAdmin):
    list_display = ("__str__", "customer", "tenant_id", "cloud", "last_outcome", "offboarded_at")
    list_filter = ("cloud", "last_outcome")
    search_fields = ("primary_domain", "tenant_id", "customer__name")


@admin.register(ConsentLink)
class ConsentLinkAdmin(admin.ModelAdmin):
    list_display = ("tenant", "issued_by", "issued_at", "expires_at", "used_at", "revoked_at", "outcome")
    readonly_fields = [f.name for f in ConsentLink._meta.fields]
