"""Every write through the Django admin is an audit event with the changed fields (old → new, never secrets), or the
model is read-only there: through the real admin, signed in as a superuser."""
import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.forms import MultiWidget
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone

from onboarding.models import Customer
from portal.admin import NOT_RECORDED, AuditedAdminMixin
from portal.models import AuditEvent
from portal.selectors import audit_chain_verify
from tests.conftest import PASSWORD

# The admin's time widget shows whole seconds: an object saved there unchanged must not differ in microseconds.
WHOLE_SECOND = timezone.now().replace(microsecond=0)


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("root", "root@example.com", PASSWORD)


@pytest.fixture
def root(superuser):
    client = Client()
    client.force_login(superuser)
    return client


def _form_data(model, obj, superuser, **changes) -> dict:
    """What the admin's change form posts back for obj as it is, with `changes` applied."""
    request = RequestFactory().get("/")
    request.user = superuser
    form = admin.site._registry[model].get_form(request, obj)(instance=obj)
    data = {}
    for bound in form:
        widget, value = bound.field.widget, bound.value()
        if bound.name in changes:
            value = changes[bound.name]
        if isinstance(widget, MultiWidget):
            for i, part in enumerate(widget.decompress(value)):
                data[f"{bound.name}_{i}"] = widget.widgets[i].format_value(part) or ""
        elif isinstance(value, bool):
            if value:
                data[bound.name] = "on"
        elif isinstance(value, list | tuple):
            data[bound.name] = [str(v) for v in value]
        else:
            data[bound.name] = "" if value is None else str(value)
    return data


def _change(client, obj, superuser, **changes):
    model = type(obj)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[obj.pk])
    response = client.post(url, {**_form_data(model, obj, superuser, **changes), "_save": "Save"})
    assert response.status_code == 302, response.content.decode()[:2000]


@pytest.mark.django_db
def test_home_app_audience_change_is_audited_with_old_and_new_value(root, superuser, make_home_app):
    app = make_home_app(created_at=WHOLE_SECOND)
    _change(root, app, superuser, mi_audience="api://contoso-mssp/exchange")
    app.refresh_from_db()
    assert app.mi_audience == "api://contoso-mssp/exchange"
    event = AuditEvent.objects.get(action="admin.homeapp.changed")
    assert event.actor_label == "root" and event.target_type == "exchange.homeapp" and event.target_id == str(app.pk)
    assert event.detail == {"object": "Keyless access", "changes": {
        "mi_audience": {"old": "", "new": "api://contoso-mssp/exchange"}}}
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_customer_rename_add_and_delete_are_audited(root, superuser):
    customer = Customer.objects.create(name="Fabrikam", created_at=WHOLE_SECOND)
    _change(root, customer, superuser, name="Fabrikam Holdings")
    changed = AuditEvent.objects.get(action="admin.customer.changed")
    assert changed.detail["changes"] == {"name": {"old": "Fabrikam", "new": "Fabrikam Holdings"}}

    response = root.post(reverse("admin:onboarding_customer_add"),
                         {"name": "Northwind", "contact_name": "", "contact_email": "", "notes": "",
                          "created_at_0": "2026-11-25", "created_at_1": "10:00:00", "created_by": "", "_save": "Save"})
    assert response.status_code == 302
    added = AuditEvent.objects.get(action="admin.customer.added")
    northwind = Customer.objects.get(name="Northwind")
    assert added.target_id == str(northwind.pk) and added.detail["fields"]["name"] == "Northwind"

    response = root.post(reverse("admin:onboarding_customer_delete", args=[northwind.pk]), {"post": "yes"})
    assert response.status_code == 302 and not Customer.objects.filter(name="Northwind").exists()
    deleted = AuditEvent.objects.get(action="admin.customer.deleted")
    assert deleted.target_id == str(northwind.pk) and deleted.detail["object"] == "Northwind"

    Customer.objects.create(name="Tailspin")
    response = root.post(reverse("admin:onboarding_customer_changelist"), {
        "action": "delete_selected", "post": "yes",
        "_selected_action": [str(pk) for pk in Customer.objects.values_list("pk", flat=True)]})
    assert response.status_code == 302 and not Customer.objects.exists()
    bulk = AuditEvent.objects.filter(action="admin.customer.deleted", detail__bulk=True)
    assert sorted(e.detail["object"] for e in bulk) == ["Fabrikam Holdings", "Tailspin"]
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_saving_without_a_change_records_nothing(root, superuser):
    customer = Customer.objects.create(name="Fabrikam", created_at=WHOLE_SECOND)
    before = AuditEvent.objects.count()
    _change(root, customer, superuser)
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_staff_role_and_password_changes_are_audited_without_secrets(root, superuser, make_staff):
    user = make_staff("viewer", "ada")
    _change(root, user, superuser, groups=[Group.objects.get(name="admin").pk])
    event = AuditEvent.objects.get(action="admin.user.changed")
    assert event.detail["changes"]["groups"] == {"old": ["viewer"], "new": ["admin"]}
    response = root.post(reverse("admin:auth_user_password_change", args=[user.pk]),
                         {"password1": "a-new-secret-password-99", "password2": "a-new-secret-password-99",
                          "usable_password": "true"})
    assert response.status_code == 302
    password = AuditEvent.objects.filter(action="admin.user.changed").order_by("-seq").first()
    assert password.detail["changes"] == {"password": {"old": NOT_RECORDED, "new": NOT_RECORDED}}
    user.refresh_from_db()
    trail = "".join(e.canonical() for e in AuditEvent.objects.all())
    assert "a-new-secret-password-99" not in trail and user.password not in trail


@pytest.mark.django_db
def test_the_audit_trail_is_read_only_in_the_admin(root):
    from portal.services import Actor, audit_record

    event = audit_record(action="test.kept", actor=Actor.system("test"))
    assert root.get(reverse("admin:portal_auditevent_change", args=[event.pk])).status_code == 200  # view only
    response = root.post(reverse("admin:portal_auditevent_change", args=[event.pk]), {"action": "test.changed"})
    assert response.status_code == 403
    assert root.post(reverse("admin:portal_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code == 403
    assert root.get(reverse("admin:portal_auditevent_add")).status_code == 403
    assert AuditEvent.objects.get(pk=event.pk).action == "test.kept"


@pytest.mark.django_db
def test_every_registered_model_is_audited_or_read_only(superuser):
    request = RequestFactory().get("/")
    request.user = superuser
    ours = {"portal", "onboarding", "exchange", "auth"}
    covered = set()
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in ours:
            continue
        covered.add(model._meta.label)
        writable = (model_admin.has_add_permission(request) or model_admin.has_change_permission(request)
                    or model_admin.has_delete_permission(request))
        assert isinstance(model_admin, AuditedAdminMixin) or not writable, model._meta.label
    assert {"portal.AuditEvent", "onboarding.Customer", "onboarding.CustomerTenant", "onboarding.ConsentLink",
            "exchange.HomeApp", "exchange.ManagedIdentity", "exchange.FederatedCredential", "exchange.TokenTest",
            "exchange.Sweep", "auth.User", "auth.Group"} <= covered
