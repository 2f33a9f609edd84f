"""The OpenAPI document validates and lists every route; every documented operation, called with each role's
portal token (and none), answers the status its role calls for."""
import itertools
import re

import pytest
from django.urls import get_resolver
from django.utils import timezone
from openapi_spec_validator import validate

from api.api import api
from api.models import PortalToken
from tests.api.conftest import ApiClient, exchange

ROLES = ("viewer", "operator", "admin", "auditor")
VIEW, OPERATE, ADMINISTER, AUDIT = {"viewer", "operator", "admin"}, {"operator", "admin"}, {"admin"}, {"auditor",
                                                                                                     "admin"}
ANY = set(ROLES)

# (method, path) -> (roles allowed, status when allowed). Written out here, independently of the routes' own
# declarations, so that a route whose guard changes (or a route nobody listed) fails this test.
EXPECTED = {
    ("post", "/api/v1/sts/exchange"): (None, 200),
    ("post", "/api/v1/sts/revoke"): (ANY, 204),
    ("get", "/api/v1/identity-providers"): (ADMINISTER, 200),
    ("post", "/api/v1/identity-providers"): (ADMINISTER, 201),
    ("patch", "/api/v1/identity-providers/{provider_id}"): (ADMINISTER, 200),
    ("get", "/api/v1/portal-tokens"): (ADMINISTER, 200),
    ("post", "/api/v1/portal-tokens/{token_id}/revoke"): (ADMINISTER, 200),
    ("get", "/api/v1/customers"): (VIEW, 200),
    ("post", "/api/v1/customers"): (OPERATE, 201),
    ("get", "/api/v1/customers/{customer_id}"): (VIEW, 200),
    ("get", "/api/v1/tenants"): (VIEW, 200),
    ("post", "/api/v1/tenants"): (OPERATE, 201),
    ("get", "/api/v1/tenants/{tenant_pk}"): (VIEW, 200),
    ("post", "/api/v1/tenants/{tenant_pk}/consent-links"): (OPERATE, 201),
    ("get", "/api/v1/token-tests"): (VIEW, 200),
    ("post", "/api/v1/tenants/{tenant_pk}/token-tests"): (OPERATE, 202),
    ("get", "/api/v1/token-tests/{test_id}"): (VIEW, 200),
    ("post", "/api/v1/sweeps"): (OPERATE, 202),
    ("get", "/api/v1/sweeps"): (VIEW, 200),
    ("get", "/api/v1/sweeps/{sweep_id}"): (VIEW, 200),
    ("get", "/api/v1/health"): (VIEW, 200),
    ("get", "/api/v1/fic-inventory"): (VIEW, 200),
    ("get", "/api/v1/audit-events"): (AUDIT, 200),
    ("get", "/api/v1/audit-events/export"): (AUDIT, 200),
}


def _document() -> dict:
    response = ApiClient().get("/openapi.json")
    assert response.status_code == 200
    return response.json()


def test_the_openapi_document_validates_and_lists_every_route(db):
    document = _document()
    validate(document)
    documented = {(method, path) for path, item in document["paths"].items() for method in item}
    assert documented == set(EXPECTED)
    # Every route the API registered is documented (nothing is served that the document hides).
    registered = {(method.lower(), "/api/v1/" + (router_prefix + "/" + path).strip("/"))
                  for router_prefix, router in api._routers for path, view in router.path_operations.items()
                  for op in view.operations for method in op.methods}
    registered = {(m, re.sub("/+", "/", p).rstrip("/")) for m, p in registered}
    assert {(m, p) for m, p in registered} == set(EXPECTED)
    # Every guarded operation says which capability it needs, and answers problems as application/problem+json.
    for path, item in document["paths"].items():
        for method, operation in item.items():
            assert operation["x-required-capability"], (method, path)
            assert "application/problem+json" in operation["responses"]["401" if path != "/api/v1/sts/exchange"
                                                                        else "400"]["content"]
    assert "api-v1" in get_resolver().namespace_dict


@pytest.fixture
def world(api_world, make_tenant, make_staff):
    """Objects every route can act on, and per role: its portal token and a tenant of its own (a token test or a
    sweep already running would answer 409)."""
    from exchange.models import Sweep, TokenTest
    from onboarding.models import Customer

    clients = {role: api_world.login(role) for role in ROLES}
    customer = Customer.objects.create(name="Contract customer")
    tenants = {role: make_tenant(customer=customer, consent_received_at=None) for role in ROLES + (None,)}
    test = TokenTest.objects.create(tenant=tenants[None], trigger="manual")
    sweep = Sweep.objects.create(trigger="manual", total=0, finished_at=timezone.now())
    target = api_world.provider(name="patch-target", subject="repo:contoso/target:ref:refs/heads/main")
    victim = api_world.login("viewer")
    domains = {"operator": "northwind.example", "admin": "woodgrove.example"}
    return {"clients": clients, "customer": customer, "tenants": tenants, "test": test, "sweep": sweep,
            "target": target, "victim": PortalToken.objects.get(provider=victim.provider), "domains": domains,
            "api_world": api_world}


def _call(world, role, method, path):
    """Fill the path's parameters and the body for this role's call."""
    n = next(_serial)
    tenant = world["tenants"][role]
    params = {"provider_id": world["target"].pk, "token_id": world["victim"].pk, "customer_id": world["customer"].pk,
              "tenant_pk": tenant.pk, "test_id": world["test"].pk, "sweep_id": world["sweep"].pk}
    url = path.removeprefix("/api/v1").format(**params)
    bodies = {
        "/identity-providers": {"name": f"contract-{n}", "issuer_url": "https://issuer.example/", "audience": "a",
                                "subject": f"s-{n}", "role": "viewer"},
        "/identity-providers/{provider_id}": {"description": f"changed {n}"},
        "/customers": {"name": f"Contract {n}"},
        "/tenants": {"customer_id": world["customer"].pk,
                     "domain_or_id": world["domains"].get(role, "tailspin.example")},
    }
    body = bodies.get(path.removeprefix("/api/v1"))
    if path == "/api/v1/sts/exchange":
        subject = f"repo:contoso/exchange-{role}:ref:refs/heads/main"
        world["api_world"].provider(role=role or "viewer", subject=subject)
        return exchange(world["api_world"].ci_token(subject=subject), issuer=world["api_world"].ci_issuer)
    client = world["clients"][role] if role else ApiClient()
    if path == "/api/v1/sts/revoke" and role:
        client = world["api_world"].login(role)  # a session of its own: revoking it must not end the role's
    return getattr(client, method)(url, body) if method != "get" else client.get(url)


_serial = itertools.count(1)


def test_every_documented_operation_with_each_role(world):
    seen = 0
    for (method, path), (allowed, ok) in EXPECTED.items():
        for role in ROLES + (None,):
            response = _call(world, role, method, path)
            if allowed is None:
                expected = ok
            elif role is None:
                expected = 401
            else:
                expected = ok if role in allowed else 403
            assert response.status_code == expected, (method, path, role, response.content[:300])
            if expected >= 400:
                assert response["Content-Type"] == "application/problem+json"
            seen += 1
    assert seen == len(EXPECTED) * (len(ROLES) + 1)
