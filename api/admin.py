"""Identity providers in the Django admin: every change goes through the audited services; portal tokens read-only
(revocable)."""
from django.contrib import admin

from api import services
from api.models import IdentityProvider, PortalToken
from portal.services import Actor, client_ip


@admin.register(IdentityProvider)
class IdentityProviderAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "issuer_url", "subject", "role", "session_seconds", "enabled")
    list_filter = ("kind", "role", "enabled")
    search_fields = ("name", "issuer_url", "subject")

    def save_model(self, request, obj, form, change):
        actor = Actor.staff(request.user)
        fields = {f: form.cleaned_data[f] for f in services.PROVIDER_FIELDS if f in form.cleaned_data}
        if change:
            provider = IdentityProvider.objects.get(pk=obj.pk)
            saved = services.identity_provider_update(provider=provider, actor=actor, **fields)
        else:
            saved = services.identity_provider_create(actor=actor, **fields)
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.identity_provider_delete(provider=obj, actor=Actor.staff(request.user))

    def delete_queryset(self, request, queryset):
        for provider in queryset:
            self.delete_model(request, provider)


@admin.register(PortalToken)
class PortalTokenAdmin(admin.ModelAdmin):
    list_display = ("pk", "provider", "subject", "issued_at", "expires_at", "revoked_at", "last_used_at")
    list_filter = ("provider",)
    readonly_fields = ("token_hash", "provider", "subject", "claims", "issued_at", "expires_at", "revoked_at",
                       "last_used_at")
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke the selected portal tokens")
    def revoke(self, request, queryset):
        for token in queryset.select_related("provider"):
            services.portal_token_revoke(portal_token=token, actor=Actor.staff(request.user), ip=client_ip(request))
