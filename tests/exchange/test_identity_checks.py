"""Issue 13's identities items: made-up GUIDs refused (format, then Graph), the duplicate-FIC warning, and one
wording for "the identity the workers use" with each finding shown once."""
import uuid

from django.urls import reverse
from django.utils import timezone

from emulator import world as demo
from exchange import chain
from exchange.lint import lint_app
from exchange.models import FederatedCredential, ManagedIdentity
from exchange.services import fic_inventory_sync
from portal.services import Actor
from tests.exchange.test_lint import HOME, IDENTITY, _app, _fic, codes

WEB = {"name": "keyless-web", "client_id": demo.WEB_MI_CLIENT_ID, "principal_id": demo.WEB_MI_PRINCIPAL_ID,
       "tenant_id": demo.HOME, "cloud": "global", "in_use": ""}


def _post(client, data):
    return client.post(reverse("exchange:identity-create"), data)


def test_guid_format_and_the_nil_guid_are_refused(staff_clients, db):
    admin = staff_clients["admin"]
    for field, value, told in (("client_id", demo.WEB_MI_CLIENT_ID.replace("-", ""), b"8-4-4-4-12"),
                               ("principal_id", "{" + demo.WEB_MI_PRINCIPAL_ID + "}", b"8-4-4-4-12"),
                               ("tenant_id", "00000000-0000-0000-0000-000000000000", b"Tenant ID"),
                               ("principal_id", demo.WEB_MI_CLIENT_ID, b"is not the client id")):
        response = _post(admin, {**WEB, field: value})
        assert response.status_code == 400 and told in response.content, field
    assert not ManagedIdentity.objects.exists()


def test_ids_checked_against_graph(portal_on_emulator, staff_clients):
    admin = staff_clients["admin"]
    made_up = _post(admin, {**WEB, "client_id": "5c4e8a1f-2b3d-4c6e-8f0a-0000deadbeef"})
    assert made_up.status_code == 400 and b"Graph has no service principal with this client id" in made_up.content
    wrong = _post(admin, {**WEB, "principal_id": "1f2e3d4c-5b6a-4978-8877-000000000000"})
    assert wrong.status_code == 400 and demo.WEB_MI_PRINCIPAL_ID.encode() in wrong.content
    app_id = _post(admin, {**WEB, "client_id": demo.APP_ID})  # an app registration's client id, not an identity's
    assert app_id.status_code == 400 and b"not a managed identity" in app_id.content
    saved = admin.post(reverse("exchange:identity-create"), WEB, follow=True)
    assert b"Checked against Graph: keyless-web has these ids." in saved.content
    assert ManagedIdentity.objects.filter(name="keyless-web").exists()


def test_not_checked_when_graph_cannot_be_asked(portal_on_emulator, staff_clients, settings):
    admin = staff_clients["admin"]
    other_tenant = {**WEB, "name": "elsewhere", "client_id": "2c2c2c2c-0000-4000-8000-000000000001",
                    "tenant_id": "2b2b2b2b-0000-4000-8000-000000000001"}
    saved = admin.post(reverse("exchange:identity-create"), other_tenant, follow=True)
    assert b"Not checked against Graph: no home app of this tenant" in saved.content
    settings.ENTRA_BASE_URL = "https://127.0.0.1:1"  # Graph (and Entra) unreachable
    chain.reset_clients()
    saved = admin.post(reverse("exchange:identity-create"), WEB, follow=True)
    assert b"Not checked against Graph (" in saved.content
    assert ManagedIdentity.objects.filter(name="keyless-web").count() == 1


def test_two_fics_for_one_identity_warn_once():
    v2, v1 = _fic(name="worker"), _fic(name="worker-v1", issuer=f"https://sts.windows.net/{HOME}/")
    findings = lint_fic_findings(v2, siblings=[v2, v1])
    assert [f.code for f in findings] == ["duplicate_identity"]
    assert "worker-v1 also trusts worker" in findings[0].message
    assert "duplicate_identity" not in codes(_fic())


def lint_fic_findings(fic, siblings):
    from exchange.lint import lint_fic

    return lint_fic(fic, app=_app(), identities=[IDENTITY], siblings=siblings)


def test_the_fic_confirmation_warns_of_a_duplicate(portal_on_emulator, staff_clients):
    fic_inventory_sync(app=portal_on_emulator.app, actor=Actor.system("test"))
    page = staff_clients["admin"].get(reverse("exchange:fic-create", kwargs={
        "app_pk": portal_on_emulator.app.pk, "identity_pk": portal_on_emulator.identity.pk})).content.decode()
    assert "already trusts keyless-worker" in page and "keyless-worker</strong> (issuer" in page


def _eu():
    return ManagedIdentity(pk=2, name="worker-eu", client_id=uuid.uuid4(), principal_id=uuid.uuid4(),
                           tenant_id=uuid.UUID(HOME), cloud="global", in_use=True,
                           created_at=IDENTITY.created_at + timezone.timedelta(days=1))


def test_one_wording_for_the_identity_the_workers_use():
    findings, _ = lint_app(_app(), fics=[], identities=[IDENTITY, _eu()], portal_redirect_uri="x")
    by_code = {f.code: f for f in findings}
    assert by_code["identity_untrusted"].message.startswith("No FIC trusts worker, the identity the workers use")
    assert by_code["spare_identity_untrusted"].message.startswith(
        "worker-eu is marked as used by the workers, but they present worker")
    assert "the identity the workers use" not in by_code["spare_identity_untrusted"].message
    # Graph refused the workers' token (70021): one finding says so, not two.
    findings, _ = lint_app(_app(graph_error={"code": "AADSTS70021"}), fics=[], identities=[IDENTITY],
                           portal_redirect_uri="x")
    assert [f.code for f in findings if "untrusted" in f.code] == ["identity_untrusted"]
    assert findings[0].message.startswith("No FIC trusts worker, the identity the workers use")


def test_the_page_names_each_finding_once(portal_on_emulator, staff_clients):
    app = portal_on_emulator.app
    fic_inventory_sync(app=app, actor=Actor.system("test"))
    FederatedCredential.objects.filter(home_app=app).update(removed_at=timezone.now())  # the workers' FIC is gone
    ManagedIdentity.objects.create(name="keyless-worker-eu", client_id=uuid.uuid4(), principal_id=uuid.uuid4(),
                                   tenant_id=app.home_tenant_id, in_use=True)
    page = staff_clients["viewer"].get(reverse("exchange:identities")).content.decode()
    assert "workers use <strong>keyless-worker</strong>" in page
    assert page.count("No FIC trusts keyless-worker, the identity the workers use") == 1
    assert "No FIC trusts keyless-worker-eu, the identity the workers use" not in page
    assert page.count("keyless-worker-eu is marked as used by the workers") == 1
    assert page.count("Fix first:") == 1




def test_an_edit_that_keeps_the_ids_asks_graph_nothing(portal_on_emulator, staff_clients):
    identity = portal_on_emulator.identity
    portal_on_emulator.control.reset_requests()
    response = staff_clients["admin"].post(reverse("exchange:identity-edit", kwargs={"pk": identity.pk}), {
        "name": "renamed", "client_id": str(identity.client_id), "principal_id": str(identity.principal_id),
        "tenant_id": str(identity.tenant_id), "cloud": "global", "resource_id": identity.resource_id, "in_use": "on"},
        follow=True)
    assert b"renamed saved." in response.content and b"hecked against Graph" not in response.content
    assert portal_on_emulator.control.requests()["total"] == 0
