"""Fixtures of the automation API's tests: the portal on the emulator, identity providers trusting the emulator's
managed identity and an OIDC issuer it serves, workload tokens minted there, and an API client."""
import json
from types import SimpleNamespace

import pytest
import requests
from django.test import Client

from api.services import identity_provider_create
from emulator.world import HOME, MI_CLIENT_ID, MI_PRINCIPAL_ID
from portal.services import Actor

AUDIENCE = "api://keyless-portal"
MI_ISSUER = f"https://login.microsoftonline.com/{HOME}/v2.0"
REPO_SUBJECT = "repo:contoso/infra:ref:refs/heads/main"


class ApiClient:
    """Django's test client speaking JSON to /api/v1/, with an optional bearer."""

    def __init__(self, token: str | None = None):
        self.client = Client(HTTP_HOST="127.0.0.1")
        self.token = token

    def _headers(self, headers):
        out = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in (headers or {}).items()}
        if self.token:
            out["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        return out

    def get(self, path, params=None, headers=None):
        return self.client.get(f"/api/v1{path}", params or {}, **self._headers(headers))

    def post(self, path, body=None, headers=None):
        return self.client.post(f"/api/v1{path}", json.dumps(body) if body is not None else "",
                                content_type="application/json", **self._headers(headers))

    def patch(self, path, body=None, headers=None):
        return self.client.patch(f"/api/v1{path}", json.dumps(body or {}), content_type="application/json",
                                 **self._headers(headers))


def exchange(token: str, *, issuer: str, audience: str = AUDIENCE):
    return ApiClient().post("/sts/exchange", {"audience": audience, "issuer_uri": issuer, "jwt_token": token})


@pytest.fixture
def api_world(portal_on_emulator):
    """The portal on the emulator; an external OIDC issuer `ci` served by the emulator (https, its own discovery
    and JWKS), and helpers to mint workload tokens and register identity providers."""
    control = portal_on_emulator.control
    ci_issuer = control.workload_issuer("ci")
    imds_url = portal_on_emulator.info["imds_url"]

    def imds_token(resource: str = AUDIENCE) -> str:
        """What a workload on the VM does: ask IMDS for its managed identity's token for the portal's audience."""
        session = requests.Session()
        session.trust_env = False
        response = session.get(f"{imds_url}/metadata/identity/oauth2/token", headers={"Metadata": "true"},
                               params={"api-version": "2018-02-01", "resource": resource, "client_id": MI_CLIENT_ID},
                               timeout=10)
        response.raise_for_status()
        return response.json()["access_token"]

    def ci_token(subject: str = REPO_SUBJECT, audience: str = AUDIENCE, **claims) -> str:
        return control.workload_token("ci", subject=subject, audience=audience, claims=claims)

    def provider(**fields):
        counter["n"] += 1
        fields = {"name": f"provider-{counter['n']}", "issuer_url": ci_issuer, "audience": AUDIENCE,
                  "subject": REPO_SUBJECT, "role": "operator", "kind": "github", **fields}
        return identity_provider_create(actor=Actor.system("test"), **fields)

    def mi_provider(**fields):
        return provider(**{"kind": "azure", "issuer_url": MI_ISSUER, "subject": MI_PRINCIPAL_ID, **fields})

    def login(role: str = "operator", **fields) -> ApiClient:
        """A client holding a portal token obtained through the exchange, for a new provider granting `role`."""
        subject = f"repo:contoso/{role}-{counter['n'] + 1}:ref:refs/heads/main"
        made = provider(role=role, subject=subject, **fields)
        response = exchange(ci_token(subject=subject), issuer=ci_issuer)
        assert response.status_code == 200, response.content
        client = ApiClient(response.json()["access_token"])
        client.provider = made
        return client

    counter = {"n": 0}
    return SimpleNamespace(ci_issuer=ci_issuer, imds_token=imds_token, ci_token=ci_token, provider=provider,
                           mi_provider=mi_provider, login=login, control=control, app=portal_on_emulator.app,
                           emulator=portal_on_emulator.emulator, info=portal_on_emulator.info)
