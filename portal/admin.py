"""The Django admin (superusers): every write made there is an audit event, and the audit trail itself is read-only."""
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import transaction

from portal.models import AuditEvent
from portal.services import Actor, audit_record, audit_record_many, client_ip

# Fields whose values never reach the trail (only that they changed).
SECRET_FIELD_WORDS = ("password", "secret", "token", "hash", "key", "state")
NOT_RECORDED = "(changed; value not recorded)"


def _plain(value):
    if value is None or isinstance(value, bool | int | float | str | list | dict):
        return value
    return str(value)


class AuditedAdminMixin:
    """Adds, changes and deletions through the admin become `admin.<model>.added|changed|deleted` audit events naming
    the object and, for a change, each changed field's old and new value (secret-looking fields: only that they
    changed). The event joins the admin's transaction, so the write and its record commit together."""

    audit_secret_fields: tuple[str, ...] = ()

    def _audit_is_secret(self, name: str) -> bool:
        return name in self.audit_secret_fields or any(word in name.lower() for word in SECRET_FIELD_WORDS)

    def _audit_values(self, obj) -> dict:
        return {field.name: _plain(field.value_from_object(obj)) for field in obj._meta.concrete_fields}

    def _audit_event(self, request, obj, verb: str, detail: dict) -> dict:
        # A field named tenant_id holds an Entra tenant GUID (a foreign key `tenant` would have that attname too).
        has_tenant = any(field.name == "tenant_id" for field in obj._meta.concrete_fields)
        return {"action": f"admin.{obj._meta.model_name}.{verb}", "actor": Actor.staff(request.user),
                "target_type": obj._meta.label_lower, "target_id": str(obj.pk),
                "tenant_id": str(obj.tenant_id or "") if has_tenant else "",
                "detail": {"object": str(obj)[:200], **detail}, "ip": client_ip(request)}

    def _audit_snapshot(self, obj) -> dict:
        return {name: (NOT_RECORDED if self._audit_is_secret(name) and value else value)
                for name, value in self._audit_values(obj).items()}

    def save_model(self, request, obj, form, change):
        before, before_m2m = None, {}
        if change:
            old = type(obj)._default_manager.filter(pk=obj.pk).first()
            if old is not None:
                before = self._audit_values(old)
                before_m2m = {name: sorted(str(item) for item in getattr(old, name).all())
                              for name in form.changed_data if self._audit_is_m2m(obj, name)}
        super().save_model(request, obj, form, change)
        if before is None:
            audit_record(**self._audit_event(request, obj, "added", {"fields": self._audit_snapshot(obj)}))
            return
        changes = {}
        for name, new in self._audit_values(obj).items():
            if before.get(name) != new:
                changes[name] = ({"old": NOT_RECORDED, "new": NOT_RECORDED} if self._audit_is_secret(name)
                                 else {"old": before.get(name), "new": new})
        for name, old_items in before_m2m.items():
            new_items = sorted(str(item) for item in form.cleaned_data.get(name, []))
            if new_items != old_items:
                changes[name] = {"old": old_items, "new": new_items}
        if changes:
            audit_record(**self._audit_event(request, obj, "changed", {"changes": changes}))

    @staticmethod
    def _audit_is_m2m(obj, name: str) -> bool:
        return any(field.name == name for field in obj._meta.many_to_many)

    def delete_model(self, request, obj):
        event = self._audit_event(request, obj, "deleted", {"fields": self._audit_snapshot(obj)})
        super().delete_model(request, obj)
        audit_record(**event)

    def delete_queryset(self, request, queryset):
        events = [self._audit_event(request, obj, "deleted", {"fields": self._audit_snapshot(obj), "bulk": True})
                  for obj in queryset]
        super().delete_queryset(request, queryset)
        audit_record_many(events)


class AuditedModelAdmin(AuditedAdminMixin, admin.ModelAdmin):
    pass


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


# Staff accounts and roles (groups) are Django's own admins, audited like the rest.
User = get_user_model()
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class StaffUserAdmin(AuditedAdminMixin, UserAdmin):
    def user_change_password(self, request, id, form_url=""):
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                user = self.get_object(request, unquote(id))
                audit_record(**self._audit_event(request, user, "changed", {"changes": {
                    "password": {"old": NOT_RECORDED, "new": NOT_RECORDED}}}))
        return response


@admin.register(Group)
class RoleGroupAdmin(AuditedAdminMixin, GroupAdmin):
    pass
