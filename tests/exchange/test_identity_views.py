"""The identities page and its forms: who may register and fix what, and whether it says what to fix first."""
import json

from django.urls import reverse

from emulator import world as demo
from exchange.models import FederatedCredential, HomeApp, ManagedIdentity
from portal.models import AuditEvent

APP = {"name": "Keyless", "client_id": "2a2a2a2a-0000-4000-8000-000000000001",
       "home_tenant_id": "2b2b2b2b-0000-4000-8000-000000000001", "cloud": "global", "consent_version": "v2",
       "verify_home_token": "on"}


def test_admin_registers_a_home_app_and_bad_input_is_explained(staff_clients, db):
    url = reverse("exchange:homeapp-create")
    assert staff_clients["operator"].post(url, APP).status_code == 403
    bad = staff_clients["admin"].post(url, {**APP, "client_id": "not-a-guid"})
    assert bad.status_code == 400 and b"valid UUID" in bad.content and not HomeApp.objects.exists()
    assert staff_clients["admin"].post(url, APP)["Location"] == reverse("exchange:identities")
    app = HomeApp.objects.get()
    assert AuditEvent.objects.get(action="homeapp.created").detail["client_id"] == APP["client_id"]
    edit = staff_clients["admin"].post(reverse("exchange:homeapp-edit", kwargs={"pk": app.pk}),
                                       {**APP, "name": "Renamed"})
    assert edit.status_code == 302 and HomeApp.objects.get().name == "Renamed"
    assert AuditEvent.objects.get(action="homeapp.updated").detail == {"fields": ["name"],
                                                                       "changes": {"name": ["Keyless", "Renamed"]}}


def test_system_assigned_identities_are_refused(staff_clients, db):
    response = staff_clients["admin"].post(reverse("exchange:identity-create"), {
        "name": "vm", "client_id": "2c2c2c2c-0000-4000-8000-000000000001",
        "principal_id": "2d2d2d2d-0000-4000-8000-000000000001", "tenant_id": "2b2b2b2b-0000-4000-8000-000000000001",
        "cloud": "global", "in_use": "on",
        "resource_id": "/subscriptions/x/resourceGroups/y/providers/Microsoft.Compute/virtualMachines/vm"})
    assert response.status_code == 400 and b"System-assigned" in response.content
    assert not ManagedIdentity.objects.exists()


def test_the_page_says_what_to_fix_first(portal_on_emulator, staff_clients, django_capture_on_commit_callbacks):
    empty = staff_clients["viewer"].get(reverse("exchange:identities")).content.decode()
    assert "Not read from Graph yet" in empty
    sync = reverse("exchange:homeapp-sync", kwargs={"pk": portal_on_emulator.app.pk})
    assert staff_clients["viewer"].post(sync).status_code == 403
    with django_capture_on_commit_callbacks(execute=True):
        staff_clients["operator"].post(sync)
    page = staff_clients["viewer"].get(reverse("exchange:identities")).content.decode()
    assert "The exchange can work" in page and "keyless-worker" in page
    # A second worker pool marked in use without a FIC: the workers still present keyless-worker (the first in
    # use), so it is a warning that names both, and the page offers to create its FIC through Graph.
    pool = ManagedIdentity.objects.create(name="pool-2", client_id="5c4e8a1f-0000-4000-8000-000000000009",
                                          principal_id="7e6d5c4b-0000-4000-8000-000000000009", tenant_id=demo.HOME)
    page = staff_clients["admin"].get(reverse("exchange:identities")).content.decode()
    assert "Works, with warnings" in page and "Fix first" not in page
    assert "pool-2 is marked as used by the workers, but they present keyless-worker" in page
    assert reverse("exchange:fic-create", kwargs={"app_pk": portal_on_emulator.app.pk, "identity_pk": pool.pk}) + \
        '">Create it' in page
    # The workers' own FIC is deleted in Entra: the portal cannot even read Graph, and says what that means.
    emulator = portal_on_emulator.emulator
    with emulator.world.lock:
        emulator.world.app(demo.APP_ID)["fics"].clear()
    with django_capture_on_commit_callbacks(execute=True):
        staff_clients["operator"].post(sync)
    page = staff_clients["admin"].get(reverse("exchange:identities")).content.decode()
    assert "Fix first" in page and "every exchange will fail with AADSTS70021" in page
    assert "Entra admin center" in page


def test_fic_create_and_delete_show_exactly_what_is_sent(portal_on_emulator, staff_clients,
                                                         django_capture_on_commit_callbacks):
    app = portal_on_emulator.app
    with django_capture_on_commit_callbacks(execute=True):
        staff_clients["operator"].post(reverse("exchange:homeapp-sync", kwargs={"pk": app.pk}))
    pool = ManagedIdentity.objects.create(name="pool-2", client_id="5c4e8a1f-0000-4000-8000-000000000003",
                                          principal_id="7e6d5c4b-0000-4000-8000-000000000003", tenant_id=demo.HOME,
                                          in_use=False)
    url = reverse("exchange:fic-create", kwargs={"app_pk": app.pk, "identity_pk": pool.pk})
    assert staff_clients["operator"].get(url).status_code == 403
    confirm = staff_clients["admin"].get(url).content.decode()
    sent = json.loads(confirm.split("Content-Type: application/json")[1].split("</code>")[0].replace("&quot;", '"'))
    assert sent["subject"] == str(pool.principal_id) and sent["audiences"] == ["api://AzureADTokenExchange"]
    assert f"POST https://graph.microsoft.com/v1.0/applications/{demo.APP_OBJECT_ID}/federatedIdentityCredentials" in confirm
    done = staff_clients["admin"].post(url, follow=True).content.decode()
    assert "propagating" in done
    fic = FederatedCredential.objects.get(name="pool-2")
    delete = reverse("exchange:fic-delete", kwargs={"pk": fic.pk})
    assert f"DELETE https://graph.microsoft.com/v1.0/applications/{demo.APP_OBJECT_ID}/federatedIdentityCredentials/{fic.graph_id}" in staff_clients["admin"].get(delete).content.decode()
    staff_clients["admin"].post(delete)
    fic.refresh_from_db()
    assert fic.removed_at and AuditEvent.objects.filter(action__in=["fic.created", "fic.deleted"]).count() == 2
