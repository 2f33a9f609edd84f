"""The token exchange against the emulator: workloads' platform tokens (an Azure managed identity from IMDS, a
GitHub-style OIDC token) become portal tokens that list tenants and start token tests; every refusal is refused for
the right reason, told only what the caller can fix, and audited with the precise reason."""
import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from api.models import PortalToken
from emulator.world import HOME, MI_CLIENT_ID, MI_PRINCIPAL_ID
from onboarding.models import CustomerTenant
from portal.models import AuditEvent
from tests.api.conftest import AUDIENCE, MI_ISSUER, REPO_SUBJECT, ApiClient, exchange

PROBLEM = "application/problem+json"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict, claims: dict) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def _refused(response, *, status=401, told: str):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status and body["type"].endswith(f"token-{told.replace('_', '-')}")
    assert "access_token" not in body
    event = AuditEvent.objects.filter(action="api.exchange_refused").order_by("-seq").first()
    assert event is not None and event.detail["told"] == told
    return body, event


def test_managed_identity_token_from_imds_lists_tenants_and_runs_a_token_test(
        api_world, django_capture_on_commit_callbacks):
    api_world.mi_provider(name="workers-vm", role="operator")
    platform_token = api_world.imds_token(AUDIENCE)
    assert _claims_of(platform_token)["iss"] == MI_ISSUER  # what the emulator's IMDS writes, as Entra's does (v2)

    response = exchange(platform_token, issuer=MI_ISSUER)
    assert response.status_code == 200, response.content
    grant = response.json()
    assert response["Cache-Control"] == "no-store"
    assert grant["token_type"] == "Bearer" and grant["role"] == "operator" and 0 < grant["expires_in"] <= 900
    assert grant["identity_provider"] == "workers-vm"
    # Only the hash is stored; the exchange is audited with issuer and subject.
    stored = PortalToken.objects.get()
    assert stored.token_hash == hashlib.sha256(grant["access_token"].encode()).hexdigest()
    assert grant["access_token"] not in json.dumps(stored.claims)
    granted = AuditEvent.objects.get(action="api.exchange_granted")
    assert granted.detail["issuer"] == MI_ISSUER and granted.detail["subject"] == MI_PRINCIPAL_ID
    assert granted.actor_label == f"api:workers-vm:{MI_PRINCIPAL_ID}"

    api = ApiClient(grant["access_token"])
    customer = api.post("/customers", {"name": "Fabrikam"})
    assert customer.status_code == 201, customer.content
    added = api.post("/tenants", {"customer_id": customer.json()["id"], "domain_or_id": "fabrikam.example"})
    assert added.status_code == 201, added.content
    tenant = added.json()
    listed = api.get("/tenants", {"search": "fabrikam"})
    assert listed.status_code == 200 and [t["id"] for t in listed.json()["items"]] == [tenant["id"]]

    with django_capture_on_commit_callbacks(execute=True):  # the worker's task runs (eagerly) once committed
        started = api.post(f"/tenants/{tenant['id']}/token-tests")
    assert started.status_code == 202, started.content
    detail = api.get(f"/token-tests/{started.json()['id']}").json()
    assert detail["status"] == "succeeded" and detail["outcome"] == "verified"
    assert detail["diagnosis"]["code"] == "verified"
    assert [s["name"] for s in detail["steps"] if s["ok"]] and all(s["ok"] for s in detail["steps"])
    # The same services as the pages, audited with the identity provider and subject as actor.
    queued = AuditEvent.objects.get(action="tokentest.queued")
    assert queued.actor_kind == "staff" and queued.actor_id == f"idp:{stored.provider_id}"
    assert AuditEvent.objects.get(action="tenant.added").actor_label == granted.actor_label


def test_github_style_oidc_token_with_a_required_claim(api_world, make_tenant):
    api_world.provider(name="infra-pipeline", claim_name="repository", claim_value="contoso/infra", role="operator")
    tenant = make_tenant()
    response = exchange(api_world.ci_token(), issuer=api_world.ci_issuer)
    assert response.status_code == 200, response.content
    api = ApiClient(response.json()["access_token"])
    assert api.get("/tenants").json()["items"][0]["tenant_id"] == str(tenant.tenant_id)
    started = api.post(f"/tenants/{tenant.pk}/token-tests")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    # The same subject from another repository (the claim differs) is not accepted.
    other = exchange(api_world.ci_token(repository="contoso/fork"), issuer=api_world.ci_issuer)
    _, event = _refused(other, told="not_accepted")
    assert "required claim" in event.detail["reason"]


def test_v1_managed_identity_token_is_discovered_through_its_sts_issuer(api_world):
    v1_issuer = f"https://sts.windows.net/{HOME}/"
    api_world.mi_provider(issuer_url=v1_issuer, role="viewer")
    token = api_world.control.managed_identity_token(client_id=MI_CLIENT_ID, resource=AUDIENCE, version="1.0")
    assert _claims_of(token)["iss"] == v1_issuer
    response = exchange(token, issuer=v1_issuer)
    assert response.status_code == 200, response.content
    assert response.json()["role"] == "viewer"


# --- refusals --------------------------------------------------------------------------------------------------
def test_wrong_audience_is_told_to_the_caller(api_world):
    api_world.provider()
    token = api_world.ci_token(audience="api://something-else")
    body, event = _refused(exchange(token, issuer=api_world.ci_issuer), told="audience")
    assert "audience" in body["detail"] and event.detail["subject"] == REPO_SUBJECT
    assert event.detail["issuer"] == api_world.ci_issuer and "not in the token's aud" in event.detail["reason"]


def test_an_audience_no_provider_trusts_is_not_accepted(api_world):
    api_world.provider()
    token = api_world.ci_token(audience="api://something-else")
    _, event = _refused(exchange(token, issuer=api_world.ci_issuer, audience="api://something-else"),
                        told="not_accepted")
    assert event.detail["reason"] == "no identity provider for this issuer and audience"


def test_wrong_subject(api_world):
    api_world.provider()
    body, event = _refused(exchange(api_world.ci_token(subject="repo:contoso/other:ref:refs/heads/main"),
                                    issuer=api_world.ci_issuer), told="not_accepted")
    assert body["title"] == "Token not accepted" and "subject" not in body["detail"]
    assert "no enabled identity provider for subject" in event.detail["reason"]
    assert event.detail["subject"] == "repo:contoso/other:ref:refs/heads/main"


def test_unknown_issuer_is_refused_without_fetching_its_keys(api_world):
    api_world.provider()
    stranger = api_world.control.workload_issuer("stranger")
    api_world.control.reset_requests()
    token = api_world.control.workload_token("stranger", subject=REPO_SUBJECT, audience=AUDIENCE)
    body, event = _refused(exchange(token, issuer=stranger), told="not_accepted")
    assert event.detail["reason"] == "no identity provider for this issuer and audience"
    # Same answer as a wrong subject: a guesser cannot tell a registered issuer from another.
    assert body["detail"] == "No identity provider of this portal accepts this token."
    assert api_world.control.requests()["by_endpoint"].get("oidc_issuer", 0) == 0


def test_issuer_uri_must_be_the_tokens_iss(api_world):
    api_world.provider()
    _, event = _refused(exchange(api_world.ci_token(), issuer=MI_ISSUER), told="issuer_mismatch")
    assert "differs from issuer_uri" in event.detail["reason"]


def test_expired(api_world):
    api_world.provider()
    now = int(time.time())
    token = api_world.ci_token(iat=now - 900, nbf=now - 900, exp=now - 300)
    body, event = _refused(exchange(token, issuer=api_world.ci_issuer), told="expired")
    assert "fresh" in body["detail"] and "expired at" in event.detail["reason"]


def test_expiry_within_the_clock_skew_is_accepted(api_world, settings):
    settings.API_CLOCK_SKEW_SECONDS = 60
    api_world.provider()
    now = int(time.time())
    token = api_world.ci_token(iat=now - 600, nbf=now - 600, exp=now - 20)
    assert exchange(token, issuer=api_world.ci_issuer).status_code == 200


def test_not_yet_valid(api_world):
    api_world.provider()
    now = int(time.time())
    token = api_world.ci_token(iat=now, nbf=now + 900, exp=now + 1800)
    body, event = _refused(exchange(token, issuer=api_world.ci_issuer), told="not_yet_valid")
    assert "clock" in body["detail"] and "not valid before" in event.detail["reason"]


def test_issued_in_the_future(api_world):
    api_world.provider()
    now = int(time.time())
    _, event = _refused(exchange(api_world.ci_token(iat=now + 900, nbf=now - 10), issuer=api_world.ci_issuer),
                        told="not_yet_valid")
    assert "issued in the future" in event.detail["reason"]


def test_alg_none(api_world):
    api_world.provider()
    claims = _claims_of(api_world.ci_token())
    token = _unsigned({"alg": "none", "typ": "JWT", "kid": "oidc-1"}, claims) + "."
    _, event = _refused(exchange(token, issuer=api_world.ci_issuer), told="not_accepted")
    assert event.detail["reason"] == "algorithm 'none' refused (asymmetric algorithms only)"


def test_an_algorithm_that_is_not_a_name(api_world):
    api_world.provider()
    token = _unsigned({"alg": ["RS256"], "typ": "JWT", "kid": "oidc-1"}, _claims_of(api_world.ci_token())) + ".c2ln"
    _, event = _refused(exchange(token, issuer=api_world.ci_issuer), told="not_accepted")
    assert event.detail["reason"].startswith("algorithm ['RS256'] refused")


def test_hs256_signed_with_the_issuers_public_key(api_world, emulator_http):
    """The classic key-confusion attack: HMAC keyed with the JWKS's public key (which anyone can read)."""
    api_world.provider()
    jwk = emulator_http.get(f"{api_world.ci_issuer}/jwks").json()["keys"][0]
    public_pem = jwt.PyJWK(jwk).key.public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": jwk["kid"]}, _claims_of(api_world.ci_token()))
    signature = _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    _, event = _refused(exchange(f"{signing_input}.{signature}", issuer=api_world.ci_issuer), told="not_accepted")
    assert event.detail["reason"] == "algorithm 'HS256' refused (asymmetric algorithms only)"
    assert not PortalToken.objects.exists()


def _rogue_token(claims: dict, kid: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})


def test_unknown_kid(api_world):
    api_world.provider()
    token = _rogue_token(_claims_of(api_world.ci_token()), kid="rogue-1")
    _, event = _refused(exchange(token, issuer=api_world.ci_issuer), told="not_accepted")
    assert event.detail["reason"].startswith("unknown key id 'rogue-1'")


def test_a_known_kid_with_another_keys_signature(api_world):
    api_world.provider()
    token = _rogue_token(_claims_of(api_world.ci_token()), kid="oidc-1")
    _, event = _refused(exchange(token, issuer=api_world.ci_issuer), told="not_accepted")
    assert "InvalidSignatureError" in event.detail["reason"]


def test_disabled_provider(api_world):
    api_world.provider(enabled=False, name="switched-off")
    _, event = _refused(exchange(api_world.ci_token(), issuer=api_world.ci_issuer), told="not_accepted")
    assert event.detail["reason"] == "identity provider(s) switched-off disabled"


def test_malformed_token(api_world):
    _refused(exchange("not-a-jwt", issuer=api_world.ci_issuer), status=400, told="malformed")


def test_missing_fields_are_a_problem_document(api_world):
    response = ApiClient().post("/sts/exchange", {"audience": AUDIENCE})
    assert response.status_code == 422 and response["Content-Type"] == PROBLEM
    assert {e["location"] for e in response.json()["errors"]} >= {"body.body.issuer_uri", "body.body.jwt_token"}


# --- the issuer's keys: cached, re-read on an unknown kid, bounded -----------------------------------------------
def _issuer_calls(api_world) -> int:
    return api_world.control.requests()["by_endpoint"].get("oidc_issuer", 0)


def test_keys_are_cached_and_reread_for_an_unknown_kid(api_world, settings):
    from django.core.cache import cache

    from exchange import issuer_keys

    api_world.provider()
    api_world.control.reset_requests()
    assert exchange(api_world.ci_token(), issuer=api_world.ci_issuer).status_code == 200
    assert _issuer_calls(api_world) == 2  # discovery document, then JWKS
    assert exchange(api_world.ci_token(), issuer=api_world.ci_issuer).status_code == 200
    assert _issuer_calls(api_world) == 2  # cached
    # The issuer rotated its keys since we cached them: a token naming the new kid makes us re-read them.
    key = issuer_keys._cache_key(api_world.ci_issuer)
    cache.set(key, {"keys": [{"kty": "RSA", "kid": "retired", "n": "AQAB", "e": "AQAB"}],
                    "at": time.time() - settings.API_JWKS_REFRESH_SECONDS - 1})
    assert exchange(api_world.ci_token(), issuer=api_world.ci_issuer).status_code == 200
    assert _issuer_calls(api_world) == 4
    # ... but not more often than API_JWKS_REFRESH_SECONDS, however many unknown kids arrive.
    cache.set(key, {"keys": [{"kty": "RSA", "kid": "retired", "n": "AQAB", "e": "AQAB"}], "at": time.time()})
    _refused(exchange(api_world.ci_token(), issuer=api_world.ci_issuer), told="not_accepted")
    assert _issuer_calls(api_world) == 4


def test_keys_larger_than_the_limit_are_not_read(api_world, settings):
    settings.API_OIDC_MAX_BYTES = 64
    api_world.provider()
    body, event = _refused(exchange(api_world.ci_token(), issuer=api_world.ci_issuer), status=503,
                           told="unavailable")
    assert "more than 64 bytes" in event.detail["reason"]


def test_discovery_must_name_the_issuer_asked_for(api_world):
    """A provider whose issuer URL serves another issuer's document (the emulator's `github` names
    token.actions.githubusercontent.com) never yields keys."""
    from exchange import issuer_keys

    with pytest.raises(issuer_keys.KeysUnavailable, match="names the issuer"):
        issuer_keys.key_set(api_world.ci_issuer.replace("/ci", "/github"))
    with pytest.raises(issuer_keys.KeysUnavailable, match="not https"):
        issuer_keys.key_set("http://127.0.0.1:1/plain")


# --- portal tokens -----------------------------------------------------------------------------------------------
def test_revoked_portal_token(api_world):
    api = api_world.login("operator")
    assert api.get("/tenants").status_code == 200
    assert api.post("/sts/revoke").status_code == 204
    response = api.get("/tenants")
    assert response.status_code == 401 and response["Content-Type"] == PROBLEM
    assert "revoked" in response.json()["detail"]
    assert AuditEvent.objects.filter(action="api.token_revoked").count() == 1
    assert AuditEvent.objects.get(action="api.token_refused").detail["reason"] == "revoked"


def test_portal_token_past_its_lifetime(api_world):
    from datetime import timedelta

    from django.utils import timezone

    api = api_world.login("viewer", session_seconds=60)
    token = PortalToken.objects.get(provider=api.provider)
    assert token.expires_at - token.issued_at == timedelta(seconds=60)
    PortalToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))  # time passes
    response = api.get("/tenants")
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_disabling_a_provider_ends_its_sessions(api_world):
    from api.services import identity_provider_update
    from portal.services import Actor

    api = api_world.login("operator")
    identity_provider_update(provider=api.provider, actor=Actor.system("test"), enabled=False)
    assert api.get("/tenants").status_code == 401
    assert PortalToken.objects.get(provider=api.provider).revoked_at is not None


def test_viewer_cannot_write(api_world, make_tenant):
    tenant = make_tenant()
    api = api_world.login("viewer")
    assert api.get("/tenants").status_code == 200
    for path, body in (("/customers", {"name": "Nope"}), (f"/tenants/{tenant.pk}/token-tests", None),
                       (f"/tenants/{tenant.pk}/consent-links", None), ("/sweeps", None)):
        response = api.post(path, body)
        assert response.status_code == 403 and response["Content-Type"] == PROBLEM, path
        assert "viewer" in response.json()["detail"]
    assert not tenant.token_tests.exists() and not tenant.consent_links.exists()
    assert CustomerTenant.objects.count() == 1


def test_unauthenticated_and_garbage_bearers(api_world):
    for headers in ({}, {"Authorization": "Bearer kpt_nothing"}, {"Authorization": "Basic abc"}):
        client = ApiClient()
        response = client.client.get("/api/v1/tenants", **{f"HTTP_{k.upper()}": v for k, v in headers.items()})
        assert response.status_code == 401 and response["Content-Type"] == PROBLEM
