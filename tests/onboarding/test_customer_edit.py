"""A customer edited (each change audited as old → new), archived after a confirmation that lists the tenants it
offboards (then hidden from the lists and never swept), and unarchived."""
import pytest
from django.urls import reverse
from django.utils import timezone

from exchange.models import Sweep
from onboarding import services
from onboarding.models import ConsentLink, Customer
from portal.models import AuditEvent
from portal.services import Actor


@pytest.fixture
def contoso(db):
    return Customer.objects.create(name="Contoso", contact_name="Ada", notes="old notes")


def test_viewers_may_not_edit_or_archive(staff_clients, contoso):
    for name in ("customer-edit", "customer-archive", "customer-unarchive"):
        assert staff_clients["viewer"].post(reverse(f"onboarding:{name}", args=[contoso.pk])).status_code == 403


def test_edit_saves_and_audits_old_and_new(staff_clients, contoso):
    url = reverse("onboarding:customer-edit", args=[contoso.pk])
    form = staff_clients["operator"].get(url)
    assert form.status_code == 200 and 'value="Contoso"' in form.content.decode()
    response = staff_clients["operator"].post(url, {"name": "Contoso Ltd", "contact_name": "Ada",
                                                    "contact_email": "ada@contoso.example", "notes": "old notes",
                                                    "tags": "tier-1, eu"})
    assert response.status_code == 302
    contoso.refresh_from_db()
    assert (contoso.name, contoso.contact_email) == ("Contoso Ltd", "ada@contoso.example")
    assert sorted(contoso.tags.values_list("name", flat=True)) == ["eu", "tier-1"]
    changes = AuditEvent.objects.get(action="customer.updated").detail["changes"]
    assert changes == {"name": {"old": "Contoso", "new": "Contoso Ltd"},
                       "contact_email": {"old": "", "new": "ada@contoso.example"},
                       "tags": {"old": [], "new": ["eu", "tier-1"]}}


def test_edit_refuses_bad_input_and_keeps_it(staff_clients, contoso):
    Customer.objects.create(name="Fabrikam")
    url = reverse("onboarding:customer-edit", args=[contoso.pk])
    response = staff_clients["operator"].post(url, {"name": "Fabrikam", "contact_email": "not-an-address",
                                                    "tags": "Bad Tag!"})
    body = response.content.decode()
    assert response.status_code == 400
    assert "Customer with this Name already exists." in body and "Enter a valid email address." in body
    assert "Not a tag: tag!" in body and 'value="not-an-address"' in body
    contoso.refresh_from_db()
    assert contoso.name == "Contoso" and not AuditEvent.objects.filter(action="customer.updated").exists()


def test_nothing_changed_is_not_audited(contoso):
    _, changed = services.customer_update(customer=contoso, data={"name": "Contoso"}, tags=[],
                                          actor=Actor.system("test"))
    assert changed == [] and not AuditEvent.objects.filter(action="customer.updated").exists()


def test_archive_confirms_offboards_hides_and_is_never_swept(staff_clients, contoso, make_tenant):
    active = make_tenant(customer=contoso, last_outcome="verified")
    services.consent_link_issue(tenant=active, actor=Actor.system("test"))
    make_tenant(customer=contoso, offboarded_at=timezone.now())
    client = staff_clients["operator"]
    url = reverse("onboarding:customer-archive", args=[contoso.pk])
    confirm = client.get(url).content.decode()
    assert "Archive Contoso?" in confirm and active.primary_domain in confirm and "offboard 1 tenant" in confirm
    assert client.post(url).status_code == 302
    contoso.refresh_from_db()
    active.refresh_from_db()
    assert contoso.archived_at and active.offboarded_at
    assert ConsentLink.objects.get(tenant=active).outcome == ConsentLink.Outcome.REVOKED
    assert AuditEvent.objects.get(action="customer.archived").detail["tenants_offboarded"] == [str(active.tenant_id)]
    listing = client.get(reverse("onboarding:customer-list"))
    assert "Contoso" not in [c.name for c in listing.context["page"].object_list]
    archived = client.get(reverse("onboarding:customer-list"), {"archived": "1"})
    assert [c.name for c in archived.context["page"].object_list] == ["Contoso"]
    sweep = services.sweep_all_start(trigger=Sweep.Trigger.MANUAL, actor=Actor.system("test"))
    assert sweep.total == 0
    assert "already archived" in " ".join(
        m.message for m in client.post(url, follow=True).context["messages"])


def test_unarchive_shows_it_again_tenants_stay_offboarded(staff_clients, contoso, make_tenant):
    tenant = make_tenant(customer=contoso)
    services.customer_archive(customer=contoso, actor=Actor.system("test"))
    response = staff_clients["operator"].post(reverse("onboarding:customer-unarchive", args=[contoso.pk]),
                                              follow=True)
    assert "its tenants stay offboarded" in response.content.decode()
    contoso.refresh_from_db()
    tenant.refresh_from_db()
    assert contoso.archived_at is None and tenant.offboarded_at is not None
    assert AuditEvent.objects.filter(action="customer.unarchived").count() == 1
