"""The API's resources beyond the exchange: filters and cursors, consent links shown once, idempotent writes,
problem documents, the per-identity rate limit, identity providers managed by admins, the audit trail's export."""
import json
from datetime import timedelta

from django.utils import timezone

from api.models import IdempotencyKey, IdentityProvider, PortalToken
from exchange.models import Sweep, TokenTest
from onboarding.models import ConsentLink, Customer, CustomerTenant
from portal.models import AuditEvent
from portal.services import Actor, audit_record

PROBLEM = "application/problem+json"


def _all_pages(api, path, params=None, limit=2):
    items, cursor, pages = [], None, 0
    while True:
        response = api.get(path, {**(params or {}), "limit": limit, **({"cursor": cursor} if cursor else {})})
        assert response.status_code == 200, response.content
        body = response.json()
        items += body["items"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            return items, pages


def test_tenant_status_filter_agrees_with_the_derived_status(api_world, make_tenant):
    now = timezone.now()
    shapes = [
        {"consent_received_at": None},
        {"consent_received_at": None, "invited_at": now},
        {},
        {"last_outcome": "verified", "verified_at": now},
        {"last_outcome": "no_role"},
        {"last_outcome": "not_consented"},
        {"consent_received_at": None, "declined_at": now, "invited_at": now},
        {"declined_at": now - timedelta(days=1)},
        {"declined_at": now + timedelta(seconds=1)},
        {"offboarded_at": now, "last_outcome": "verified"},
    ]
    tenants = [make_tenant(**shape) for shape in shapes]
    api = api_world.login("viewer")
    by_status = {}
    for tenant in tenants:
        by_status.setdefault(tenant.status, set()).add(tenant.pk)
    assert len(by_status) == len(CustomerTenant.Status)  # every status is represented
    for status in CustomerTenant.Status.values:
        items, _ = _all_pages(api, "/tenants", {"status": status}, limit=100)
        assert {t["id"] for t in items} == by_status[status], status
        assert all(t["status"] == status for t in items)
    bad = api.get("/tenants", {"status": "sleeping"})
    assert bad.status_code == 422 and bad["Content-Type"] == PROBLEM


def test_tenant_list_pages_with_a_cursor(api_world, make_tenant):
    tenants = [make_tenant() for _ in range(5)]
    api = api_world.login("viewer")
    items, pages = _all_pages(api, "/tenants", limit=2)
    assert [t["id"] for t in items] == [t.pk for t in tenants] and pages == 3
    assert api.get("/tenants", {"cursor": "garbage!"}).status_code == 400
    only = api.get("/tenants", {"customer_id": tenants[0].customer_id}).json()["items"]
    assert [t["id"] for t in only] == [tenants[0].pk]


def test_tenant_add_refusal_is_a_problem_with_the_reason(api_world):
    api = api_world.login("operator")
    customer = Customer.objects.create(name="Contoso")
    response = api.post("/tenants", {"customer_id": customer.pk, "domain_or_id": "nowhere.example"})
    assert response.status_code == 422 and response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["errors"][0]["location"] == "domain_or_id" and "No tenant named" in body["detail"]
    assert not CustomerTenant.objects.exists()


def test_consent_link_url_is_returned_once_and_never_stored(api_world, make_tenant):
    tenant = make_tenant(consent_received_at=None)
    api = api_world.login("operator")
    key = {"Idempotency-Key": "link-1"}
    first = api.post(f"/tenants/{tenant.pk}/consent-links", headers=key)
    assert first.status_code == 201 and first["Cache-Control"] == "no-store"
    url = first.json()["url"]
    assert "state=" in url and str(tenant.tenant_id) in url
    state = url.split("state=")[1].split("&")[0]
    # A retry with the same key is told what happened, not given the secret again.
    again = api.post(f"/tenants/{tenant.pk}/consent-links", headers=key)
    assert again.status_code == 409 and again["Content-Type"] == PROBLEM
    assert again.json()["consent_link_id"] == first.json()["id"] and "state=" not in again.content.decode()
    assert ConsentLink.objects.count() == 1
    stored = json.dumps(list(IdempotencyKey.objects.values()), default=str)
    assert state not in stored and url not in stored
    assert AuditEvent.objects.get(action="consent_link.issued").actor_label.startswith("api:")


def test_idempotent_create_replays_the_first_answer(api_world):
    api = api_world.login("operator")
    headers = {"Idempotency-Key": "customer-42"}
    first = api.post("/customers", {"name": "Litware"}, headers=headers)
    second = api.post("/customers", {"name": "Litware"}, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second["Idempotent-Replayed"] == "true"
    assert Customer.objects.filter(name="Litware").count() == 1
    assert AuditEvent.objects.filter(action="customer.created").count() == 1
    # The same key for another request is refused; another identity's keys are its own.
    other = api.post("/customers", {"name": "Other"}, headers=headers)
    assert other.status_code == 422 and other.json()["type"].endswith("idempotency-key-reused")
    colleague = api_world.login("operator")
    assert colleague.post("/customers", {"name": "Adatum"}, headers=headers).status_code == 201


def test_an_idempotent_request_refused_as_invalid_may_be_retried_fixed(api_world):
    api = api_world.login("operator")
    headers = {"Idempotency-Key": "retry-me"}
    Customer.objects.create(name="Taken")
    assert api.post("/customers", {"name": "Taken"}, headers=headers).status_code == 422
    assert not IdempotencyKey.objects.filter(key="retry-me").exists()


def test_a_running_token_test_or_sweep_is_a_conflict(api_world, make_tenant):
    tenant = make_tenant()
    api = api_world.login("operator")
    first = api.post(f"/tenants/{tenant.pk}/token-tests")
    assert first.status_code == 202
    again = api.post(f"/tenants/{tenant.pk}/token-tests")
    assert again.status_code == 409 and again.json()["test_id"] == first.json()["id"]
    sweep = api.post("/sweeps")
    assert sweep.status_code == 202 and sweep.json()["total"] == 1
    assert api.post("/sweeps").json()["sweep_id"] == sweep.json()["id"]
    progress = api.get(f"/sweeps/{sweep.json()['id']}").json()
    assert progress["running"] and progress["done"] == 0
    assert Sweep.objects.count() == 1 and TokenTest.objects.count() == 2


def test_token_test_list_filters(api_world, make_tenant):
    a, b = make_tenant(), make_tenant()
    TokenTest.objects.create(tenant=a, trigger="manual", status="failed", outcome="not_consented",
                             diagnosis_code="AADSTS700016")
    TokenTest.objects.create(tenant=b, trigger="manual", status="succeeded", outcome="verified",
                             diagnosis_code="verified")
    api = api_world.login("viewer")
    failed = api.get("/token-tests", {"status": "failed"}).json()["items"]
    assert [t["tenant_id"] for t in failed] == [a.pk]
    assert [t["outcome"] for t in api.get("/token-tests", {"tenant_pk": b.pk}).json()["items"]] == ["verified"]
    assert api.get("/token-tests", {"code": "700016"}).json()["items"][0]["diagnosis_code"] == "AADSTS700016"
    detail = api.get(f"/token-tests/{failed[0]['id']}").json()
    assert detail["diagnosis"]["outcome"] == "not_consented" and "consent" in detail["diagnosis"]["fix"].lower()
    missing = api.get("/token-tests/999999")
    assert missing.status_code == 404 and missing["Content-Type"] == PROBLEM


def test_health_and_fic_inventory(api_world, make_tenant):
    from exchange.services import fic_inventory_sync
    from portal.services import Actor

    make_tenant(last_outcome="verified")
    fic_inventory_sync(app=api_world.app, actor=Actor.system("test"))
    api = api_world.login("viewer")
    health = api.get("/health").json()
    assert health["tenants_total"] == 1 and health["tenants_verified"] == 1
    inventory = api.get("/fic-inventory").json()
    assert inventory[0]["client_id"] == str(api_world.app.client_id)
    assert [c["name"] for c in inventory[0]["credentials"]] == ["keyless-worker"]
    assert inventory[0]["status"] in ("ok", "warning", "error") and isinstance(inventory[0]["findings"], list)


def test_rate_limit_per_identity(api_world, settings):
    api = api_world.login("viewer")
    other = api_world.login("viewer")
    settings.API_RATE_LIMIT = 3
    assert [api.get("/health").status_code for _ in range(3)] == [200, 200, 200]
    limited = api.get("/health")
    assert limited.status_code == 429 and int(limited["Retry-After"]) >= 1
    assert limited["Content-Type"] == PROBLEM
    api.get("/health")
    assert AuditEvent.objects.filter(action="api.rate_limited").count() == 1  # once per identity and minute
    assert other.get("/health").status_code == 200  # another identity has its own budget


def test_exchange_rate_limit_per_address(api_world, settings):
    from tests.api.conftest import exchange

    settings.API_EXCHANGE_RATE_LIMIT = 2
    api_world.provider()
    assert [exchange(api_world.ci_token(), issuer=api_world.ci_issuer).status_code for _ in range(3)] == [200, 200,
                                                                                                          429]


def test_admins_manage_identity_providers_audited(api_world):
    admin = api_world.login("admin")
    created = admin.post("/identity-providers", {
        "name": "deploy", "kind": "github", "issuer_url": api_world.ci_issuer, "audience": "api://keyless-portal",
        "subject": "repo:contoso/deploy:environment:prod", "role": "operator", "session_seconds": 600})
    assert created.status_code == 201, created.content
    provider = IdentityProvider.objects.get(name="deploy")
    assert AuditEvent.objects.get(action="api.provider_created", target_id=str(provider.pk)).detail["subject"] == \
        provider.subject
    too_long = admin.post("/identity-providers", {
        "name": "greedy", "issuer_url": api_world.ci_issuer, "audience": "a", "subject": "s", "role": "admin",
        "session_seconds": 7200})
    assert too_long.status_code == 422 and "session_seconds" in too_long.content.decode()
    plain_http = admin.post("/identity-providers", {"name": "plain", "issuer_url": "http://issuer.example",
                                                     "audience": "a", "subject": "s", "role": "viewer"})
    assert plain_http.status_code == 422 and plain_http.json()["errors"][0]["location"] == "issuer_url"
    # Disabling a provider ends its sessions at once.
    workload = api_world.login("operator", name="to-disable")
    patched = admin.patch(f"/identity-providers/{workload.provider.pk}", {"enabled": False})
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert workload.get("/tenants").status_code == 401
    change = AuditEvent.objects.get(action="api.provider_updated")
    assert change.detail["changed"] == {"enabled": [True, False]} and change.detail["tokens_revoked"] == 1
    listed = admin.get("/portal-tokens", {"active": True}).json()["items"]
    assert workload.provider.name not in {t["identity_provider"] for t in listed}


def test_admin_revokes_another_session(api_world):
    admin = api_world.login("admin")
    workload = api_world.login("operator")
    token = PortalToken.objects.get(provider=workload.provider)
    assert admin.post(f"/portal-tokens/{token.pk}/revoke").json()["active"] is False
    assert workload.get("/tenants").status_code == 401


def test_audit_events_cursor_and_streaming_export(api_world):
    auditor = api_world.login("auditor")
    for n in range(5):
        Customer.objects.create(name=f"C{n}")
    items, pages = _all_pages(auditor, "/audit-events", limit=2)
    seqs = [e["seq"] for e in items]
    assert seqs == sorted(seqs, reverse=True) and len(seqs) == AuditEvent.objects.count() and pages > 1
    granted = auditor.get("/audit-events", {"action": "api.exchange_granted"}).json()["items"]
    assert granted and all(e["action"] == "api.exchange_granted" for e in granted)
    export = auditor.get("/audit-events/export", {"action": "api."})
    assert export.status_code == 200 and export["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in b"".join(export.streaming_content).decode().splitlines()]
    assert lines and all(line["action"].startswith("api.") for line in lines)
    assert [line["seq"] for line in lines] == sorted(line["seq"] for line in lines)
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.detail["via"] == "api" and exported.actor_label.startswith("api:")
    # An auditor reads the trail, not the tenants.
    assert auditor.get("/tenants").status_code == 403


def test_unknown_api_path_is_a_problem(db):
    from tests.api.conftest import ApiClient

    response = ApiClient().get("/no-such-thing")
    assert response.status_code == 404 and response["Content-Type"] == PROBLEM


def test_a_method_a_route_does_not_take_is_a_problem(db):
    from tests.api.conftest import ApiClient

    response = ApiClient().client.delete("/api/v1/tenants")
    assert response.status_code == 405 and response["Content-Type"] == PROBLEM
    assert "GET" in response["Allow"] and "POST" in response["Allow"]


def test_a_retried_token_test_start_replays_instead_of_conflicting(api_world, make_tenant):
    tenant = make_tenant()
    api = api_world.login("operator")
    headers = {"Idempotency-Key": "nightly-run-7"}
    first = api.post(f"/tenants/{tenant.pk}/token-tests", headers=headers)
    retry = api.post(f"/tenants/{tenant.pk}/token-tests", headers=headers)
    assert first.status_code == retry.status_code == 202 and retry.json()["id"] == first.json()["id"]
    assert tenant.token_tests.count() == 1
    assert api.post(f"/tenants/{tenant.pk}/token-tests", headers={"Idempotency-Key": "x" * 256}).status_code == 400


def test_an_api_export_larger_than_its_limit_is_refused_before_anything_is_sent(api_world, settings):
    settings.API_EXPORT_MAX_ROWS = 3
    auditor = api_world.login("auditor")
    for n in range(5):
        audit_record(action=f"test.bulk{n}", actor=Actor.system("test"))
    refused = auditor.get("/audit-events/export", {"action": "test.bulk"})
    assert refused.status_code == 422 and refused["Content-Type"] == "application/problem+json"
    body = refused.json()
    assert body["type"].endswith(":export-too-large") and body["limit"] == 3 and "next_cursor" in body["detail"]
    assert not AuditEvent.objects.filter(action="audit.exported").exists()  # refused: nothing exported, nothing said
    narrowed = auditor.get("/audit-events/export", {"action": "test.bulk1"})
    assert narrowed.status_code == 200 and len(b"".join(narrowed.streaming_content).splitlines()) == 1


def test_a_tenant_keeps_its_definitive_outcome_beside_a_check_that_could_not_reach_microsoft(api_world, make_tenant):
    checked = timezone.now()
    tenant = make_tenant(last_outcome="verified", verified_at=checked - timedelta(hours=1), last_check_at=checked,
                         last_check_outcome="transient")
    body = api_world.login("viewer").get(f"/tenants/{tenant.pk}").json()
    assert (body["status"], body["last_outcome"], body["last_check_outcome"]) == ("verified", "verified", "transient")
    assert body["last_check_at"] and body["failing_since"] is None
