"""Microsoft Graph through msgraph-sdk: the home app and its federated identity credentials.

The Graph token comes from the same chain as token tests (managed identity → home-tenant token for Graph), so the
inventory needs no secret either. msgraph-sdk is async-only: each call builds its client inside one asyncio.run()
(a client cannot outlive its event loop — ENTRA_FACTS).
"""
import asyncio
import time
from dataclasses import dataclass, field

import httpx
from azure.core.credentials import AccessToken

from exchange.chain_tokens import app_token
from exchange.clouds import CLOUDS
from exchange.http import ssl_context


class GraphError(Exception):
    def __init__(self, code: str, message: str, status: int | None = None):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status

    def as_dict(self) -> dict:
        return {"code": self.code, "message": self.message[:1000], "status": self.status}


@dataclass
class GraphApp:
    object_id: str
    display_name: str
    sign_in_audience: str
    redirect_uris: list[str]
    fics: list[dict] = field(default_factory=list)


class _ChainCredential:
    """An azure-core credential whose tokens come from exchange.chain_tokens.app_token (no secret involved)."""

    def __init__(self, app, identity):
        self.app, self.identity = app, identity

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        result = app_token(app=self.app, identity=self.identity, tenant_id=str(self.app.home_tenant_id),
                           scope=scopes[0])
        if "access_token" not in result:
            codes = result.get("error_codes") or []
            raise GraphError(f"AADSTS{codes[0]}" if codes else str(result.get("error", "token_error")),
                             str(result.get("error_description", ""))[:1000])
        return AccessToken(result["access_token"], int(time.time()) + int(result.get("expires_in", 3599)))


def _client(app, identity):
    from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph_core import GraphClientFactory

    cloud = CLOUDS[app.cloud]
    base = cloud.graph_base
    host = httpx.URL(base).host
    auth = AzureIdentityAuthenticationProvider(_ChainCredential(app, identity), scopes=[cloud.graph_scope],
                                               allowed_hosts=[host])
    http = GraphClientFactory.create_with_default_middleware(client=httpx.AsyncClient(verify=ssl_context(),
                                                                                     timeout=30.0))
    adapter = GraphRequestAdapter(auth, http)
    adapter.base_url = f"{base}/v1.0"  # set explicitly: httpx would add a trailing slash to the default
    return GraphServiceClient(request_adapter=adapter)


def _run(coro_factory):
    from msgraph.generated.models.o_data_errors.o_data_error import ODataError

    async def go():
        try:
            return await coro_factory()
        except ODataError as exc:
            error = exc.error
            raise GraphError(getattr(error, "code", "") or "GraphError", getattr(error, "message", "") or str(exc),
                             exc.response_status_code) from exc
        except httpx.HTTPError as exc:
            raise GraphError("unavailable", f"Microsoft Graph did not answer ({type(exc).__name__}).") from exc

    return asyncio.run(go())


def _fic_dict(fic) -> dict:
    return {"id": fic.id, "name": fic.name, "issuer": fic.issuer, "subject": fic.subject,
            "audiences": list(fic.audiences or []), "description": fic.description or ""}


def read_app(*, app, identity) -> GraphApp:
    """The app (signInAudience, web.redirectUris) and its FICs."""

    async def go():
        client = _client(app, identity)
        found = await client.applications_with_app_id(str(app.client_id)).get()
        fics = await client.applications.by_application_id(found.id).federated_identity_credentials.get()
        return GraphApp(object_id=found.id, display_name=found.display_name or "",
                        sign_in_audience=found.sign_in_audience or "",
                        redirect_uris=list((found.web.redirect_uris if found.web else None) or []),
                        fics=[_fic_dict(f) for f in (fics.value or [])])

    return _run(go)


def create_fic(*, app, identity, body: dict) -> dict:
    from msgraph.generated.models.federated_identity_credential import FederatedIdentityCredential

    async def go():
        client = _client(app, identity)
        created = await client.applications.by_application_id(str(app.object_id)).federated_identity_credentials.post(
            FederatedIdentityCredential(name=body["name"], issuer=body["issuer"], subject=body["subject"],
                                        audiences=body["audiences"], description=body.get("description") or None))
        return _fic_dict(created)

    return _run(go)


def delete_fic(*, app, identity, graph_id: str) -> None:
    async def go():
        client = _client(app, identity)
        await (client.applications.by_application_id(str(app.object_id)).federated_identity_credentials
               .by_federated_identity_credential_id(graph_id).delete())

    _run(go)


def find_service_principal(*, app, identity, app_id: str) -> dict | None:
    """The service principal whose appId is `app_id` in the app's home tenant (a managed identity's: appId is its
    client id, id its principal id), or None when Graph has none."""

    async def go():
        client = _client(app, identity)
        found = await client.service_principals_with_app_id(app_id).get()
        return {"id": found.id, "app_id": found.app_id, "display_name": found.display_name or "",
                "type": found.service_principal_type or ""}

    try:
        return _run(go)
    except GraphError as exc:
        if exc.status == 404:
            return None
        raise
