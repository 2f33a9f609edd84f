"""The FIC inventory against the emulator's Graph: sync with drift, create and delete through Graph (audited), Graph
permission errors as findings, and the propagation label of a new FIC."""
import copy

import pytest
from django.conf import settings as django_settings

from emulator import world as demo
from exchange import chain
from exchange.demo import demo_seed
from exchange.lint import lint_app
from exchange.models import FederatedCredential
from exchange.selectors import fic_recently_created
from exchange.services import InventoryError, fic_body_for, fic_create, fic_delete, fic_inventory_sync
from portal.models import AuditEvent
from portal.services import Actor

ADMIN = Actor.system("test")


def _graph_headers(emulator):
    import requests

    http = requests.Session()
    http.trust_env, http.verify = False, emulator.ca_path
    mi = http.get(f"{emulator.imds_url}/metadata/identity/oauth2/token", headers={"Metadata": "true"}, params={
        "api-version": "2018-02-01", "resource": "api://AzureADTokenExchange", "client_id": demo.MI_CLIENT_ID}).json()
    token = http.post(f"{emulator.base_url}/{demo.HOME}/oauth2/v2.0/token", data={
        "client_id": demo.APP_ID, "grant_type": "client_credentials",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        "client_assertion": mi["access_token"], "scope": "https://graph.microsoft.com/.default"}).json()
    return http, {"Authorization": f"Bearer {token['access_token']}"}


def test_sync_records_the_app_and_detects_drift(portal_on_emulator):
    app = portal_on_emulator.app
    changes = fic_inventory_sync(app=app, actor=ADMIN)
    assert changes["added"] == ["keyless-worker"]
    assert app.sign_in_audience == "AzureADMultipleOrgs" and "http://127.0.0.1:8000/consent/callback/" in app.redirect_uris
    assert str(app.object_id) == demo.APP_OBJECT_ID and app.graph_synced_at
    # Someone changes Entra behind the portal's back: one FIC edited, one added, then one removed.
    http, headers = _graph_headers(portal_on_emulator.emulator)
    base = f"{portal_on_emulator.emulator.base_url}/v1.0/applications(appId='{demo.APP_ID}')/federatedIdentityCredentials"
    http.patch(f"{base}/(name='keyless-worker')", headers=headers, json={"description": "edited in the portal"})
    http.post(base, headers=headers, json={"name": "github-deploy", "issuer": "https://token.actions.githubusercontent.com",
                                           "subject": "repo:contoso/infra:ref:refs/heads/main",
                                           "audiences": ["api://AzureADTokenExchange"]})
    changes = fic_inventory_sync(app=app, actor=ADMIN)
    assert changes["added"] == ["github-deploy"]
    assert changes["changed"][0]["diff"]["description"][1] == "edited in the portal"
    http.delete(f"{base}/(name='github-deploy')", headers=headers)
    assert fic_inventory_sync(app=app, actor=ADMIN)["removed"] == ["github-deploy"]
    assert FederatedCredential.objects.get(name="github-deploy").removed_at is not None
    actions = list(AuditEvent.objects.filter(action__startswith="fic.").values_list("action", flat=True))
    assert sorted(actions) == ["fic.added", "fic.added", "fic.changed", "fic.removed"]


def test_create_and_delete_through_graph(portal_on_emulator):
    from exchange.models import ManagedIdentity

    app = portal_on_emulator.app
    fic_inventory_sync(app=app, actor=ADMIN)
    with pytest.raises(InventoryError, match="already exists"):  # Graph refuses a 2nd FIC for the same identity
        fic_create(app=app, identity=portal_on_emulator.identity, actor=ADMIN)
    # A new worker pool's identity: the portal creates its FIC with the current identity's Graph token.
    pool = ManagedIdentity.objects.create(name="Worker pool 2", client_id="5c4e8a1f-0000-4000-8000-000000000002",
                                          principal_id="7e6d5c4b-0000-4000-8000-000000000002",
                                          tenant_id=demo.HOME, in_use=False)
    body = fic_body_for(app=app, identity=pool)
    assert body == {"name": "worker-pool-2", "issuer": f"https://login.microsoftonline.com/{demo.HOME}/v2.0",
                    "subject": "7e6d5c4b-0000-4000-8000-000000000002", "audiences": ["api://AzureADTokenExchange"],
                    "description": body["description"]}
    created = fic_create(app=app, identity=pool, actor=ADMIN)
    assert created.created_by_portal_at and fic_recently_created(app)
    in_entra = {f["name"]: f for f in portal_on_emulator.emulator.world.app(demo.APP_ID)["fics"]}
    assert in_entra["worker-pool-2"]["subject"] == str(pool.principal_id)
    assert AuditEvent.objects.get(action="fic.created").detail["body"] == body
    fic_delete(credential=created, actor=ADMIN)
    assert "worker-pool-2" not in {f["name"] for f in portal_on_emulator.emulator.world.app(demo.APP_ID)["fics"]}
    created.refresh_from_db()
    assert created.removed_at and AuditEvent.objects.get(action="fic.deleted").detail["name"] == "worker-pool-2"


def test_graph_permission_error_becomes_a_finding(make_emulator, portal_on_emulator, settings):
    world = copy.deepcopy(demo.demo_world())
    world["graph_permissions"] = {}
    emu = make_emulator(world)
    settings.ENTRA_BASE_URL, settings.IMDS_URL = emu.base_url, emu.imds_url
    chain.reset_clients()
    app = portal_on_emulator.app
    result = fic_inventory_sync(app=app, actor=ADMIN)
    assert result["error"]["status"] == 403 and app.graph_error["code"] == "Authorization_RequestDenied"
    findings, _ = lint_app(app, fics=[], identities=[portal_on_emulator.identity], portal_redirect_uri="x")
    assert findings[0].code == "graph_forbidden" and "Application.Read.All" in findings[0].fix
    assert AuditEvent.objects.filter(action="inventory.sync_failed").exists()


def test_unknown_app_is_a_404_finding(portal_on_emulator):
    app = portal_on_emulator.app
    app.client_id = "00000000-0000-4000-8000-0000000000ff"
    app.save()
    chain.reset_clients()
    result = fic_inventory_sync(app=app, actor=ADMIN)
    # The unknown app cannot even get a token in its home tenant: that is the error kept.
    assert result["error"]["code"] in ("AADSTS700016", "Request_ResourceNotFound")


def test_propagation_window_setting(portal_on_emulator, settings):
    app = portal_on_emulator.app
    fic_inventory_sync(app=app, actor=ADMIN)
    assert fic_recently_created(app)  # first seen just now
    settings.FIC_PROPAGATION_MINUTES = 0
    assert not fic_recently_created(app)
    assert django_settings.FIC_PROPAGATION_MINUTES == 0


def test_demo_seed_then_sync_is_clean(portal_on_emulator):
    app, identity = demo_seed(portal_on_emulator.info)
    fic_inventory_sync(app=app, actor=ADMIN)
    findings, per_fic = lint_app(app, fics=list(app.credentials.all()), identities=[identity],
                                 portal_redirect_uri="http://127.0.0.1:8000/consent/callback/")
    assert findings == [] and all(not f for f in per_fic.values())


def test_other_issuer_discovery_is_fetched(make_emulator, portal_on_emulator, settings):
    from exchange.entra import oidc_discovery_problem

    emu = portal_on_emulator.emulator
    world = copy.deepcopy(demo.demo_world())
    # An issuer that serves its own discovery (here: one the emulator hosts under its https base URL).
    world["oidc_issuers"] = [{"name": "ci", "issuer": "set below, once the port is known"}]
    other = make_emulator(world)
    issuer = f"{other.base_url}/_issuers/ci"
    with other.world.lock:
        other.world.data["oidc_issuers"][0]["issuer"] = issuer
    assert oidc_discovery_problem(issuer) is None
    assert "names the issuer" in oidc_discovery_problem(f"{emu.base_url}/_issuers/github")
    assert "HTTP 404" in oidc_discovery_problem(f"{emu.base_url}/_issuers/nobody")
    assert "no answer" in oidc_discovery_problem("https://127.0.0.1:1/nothing-listens")


def test_sync_now_runs_on_a_worker_task(portal_on_emulator, staff_clients, django_capture_on_commit_callbacks):
    from django.urls import reverse

    with django_capture_on_commit_callbacks(execute=True):
        response = staff_clients["operator"].post(reverse("exchange:homeapp-sync",
                                                          kwargs={"pk": portal_on_emulator.app.pk}))
    assert response.status_code == 302
    portal_on_emulator.app.refresh_from_db()
    assert portal_on_emulator.app.graph_synced_at is not None
    assert AuditEvent.objects.filter(action="inventory.sync_requested").exists()
    assert AuditEvent.objects.get(action="inventory.synced").actor_label == "operator-user"
