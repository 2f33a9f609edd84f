"""Microsoft's own clients work against the emulator: MSAL, azure-identity and msgraph-sdk, over real HTTPS."""
import asyncio
import ssl

import httpx
import msal
import requests
from azure.identity import ClientAssertionCredential, ManagedIdentityCredential

from emulator import world as demo

ARM_SCOPE = "https://management.azure.com/.default"


def _session(emulator):
    session = requests.Session()
    session.trust_env = False
    session.verify = emulator.ca_path
    return session


class _ImdsSession(requests.Session):
    def __init__(self, imds_url):
        super().__init__()
        self.trust_env, self.imds_url = False, imds_url

    def request(self, method, url, *args, **kwargs):
        return super().request(method, url.replace("http://169.254.169.254", self.imds_url), *args, **kwargs)


def test_msal_managed_identity_and_confidential_client(emulator):
    mi = msal.ManagedIdentityClient(msal.UserAssignedManagedIdentity(client_id=demo.MI_CLIENT_ID),
                                    http_client=_ImdsSession(emulator.imds_url))
    first = mi.acquire_token_for_client(resource="api://AzureADTokenExchange")
    assert first["token_source"] == "identity_provider"
    assert mi.acquire_token_for_client(resource="api://AzureADTokenExchange")["token_source"] == "cache"
    app = msal.ConfidentialClientApplication(
        demo.APP_ID, client_credential={"client_assertion": lambda: first["access_token"]},
        authority=f"{emulator.base_url}/fabrikam.example", http_client=_session(emulator), instance_discovery=False)
    result = app.acquire_token_for_client(scopes=[ARM_SCOPE])
    assert result["token_type"] == "Bearer" and result["expires_in"] >= 300
    assert emulator.control.requests()["by_endpoint"]["imds"] == 1


def test_azure_identity_credentials(emulator, monkeypatch):
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emulator.imds_url)
    mi = ManagedIdentityCredential(client_id=demo.MI_CLIENT_ID)
    credential = ClientAssertionCredential(
        demo.FABRIKAM, demo.APP_ID, lambda: mi.get_token("api://AzureADTokenExchange/.default").token,
        authority=emulator.base_url.removeprefix("https://"), connection_verify=emulator.ca_path)
    token = credential.get_token(ARM_SCOPE)
    response = _session(emulator).get(f"{emulator.base_url}/subscriptions", params={"api-version": "2022-12-01"},
                                      headers={"Authorization": f"Bearer {token.token}"})
    assert response.json()["value"][0]["displayName"] == "Fabrikam Production"


def test_msgraph_sdk_lists_and_creates_fics(emulator, monkeypatch):
    from kiota_authentication_azure.azure_identity_authentication_provider import AzureIdentityAuthenticationProvider
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.applications.item.federated_identity_credentials.federated_identity_credentials_request_builder import (  # noqa: E501
        FederatedIdentityCredentialsRequestBuilder,
    )
    from msgraph.generated.models.federated_identity_credential import FederatedIdentityCredential
    from msgraph_core import GraphClientFactory

    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emulator.imds_url)
    mi = ManagedIdentityCredential(client_id=demo.MI_CLIENT_ID)
    credential = ClientAssertionCredential(
        demo.HOME, demo.APP_ID, lambda: mi.get_token("api://AzureADTokenExchange/.default").token,
        authority=emulator.base_url.removeprefix("https://"), connection_verify=emulator.ca_path)

    async def go():
        auth = AzureIdentityAuthenticationProvider(credential, scopes=["https://graph.microsoft.com/.default"],
                                                   allowed_hosts=["127.0.0.1"])
        http = GraphClientFactory.create_with_default_middleware(
            client=httpx.AsyncClient(verify=ssl.create_default_context(cafile=emulator.ca_path)))
        adapter = GraphRequestAdapter(auth, http)
        adapter.base_url = f"{emulator.base_url}/v1.0"
        client = GraphServiceClient(request_adapter=adapter)
        app = await client.applications_with_app_id(demo.APP_ID).get()
        builder = FederatedIdentityCredentialsRequestBuilder(
            adapter, f"{emulator.base_url}/v1.0/applications(appId='{demo.APP_ID}')/federatedIdentityCredentials")
        before = await builder.get()
        created = await builder.post(FederatedIdentityCredential(
            name="second-worker", issuer=f"https://login.microsoftonline.com/{demo.HOME}/v2.0",
            subject="00000000-0000-4000-8000-000000000042", audiences=["api://AzureADTokenExchange"]))
        after = await builder.get()
        return app, before, created, after

    app, before, created, after = asyncio.run(go())
    assert app.sign_in_audience == "AzureADMultipleOrgs"
    assert "http://127.0.0.1:8000/consent/callback/" in app.web.redirect_uris
    assert [f.name for f in before.value] == ["keyless-worker"]
    assert created.id and [f.name for f in after.value] == ["keyless-worker", "second-worker"]


def test_the_chain_with_nothing_but_curl(emulator):
    import json
    import shutil
    import subprocess

    curl = shutil.which("curl")

    def run(*args):
        return json.loads(subprocess.run([curl, "-sS", "--cacert", emulator.ca_path, *args], capture_output=True,
                                         text=True, check=True, timeout=30).stdout)

    mi = run("-H", "Metadata: true", f"{emulator.imds_url}/metadata/identity/oauth2/token?api-version=2018-02-01"
             f"&resource=api://AzureADTokenExchange&client_id={demo.MI_CLIENT_ID}")["access_token"]
    form = ["-d", f"client_id={demo.APP_ID}", "-d", "grant_type=client_credentials", "-d",
            "client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer", "-d",
            f"client_assertion={mi}"]
    home = run(*form, "-d", "scope=https://graph.microsoft.com/.default", f"{emulator.base_url}/{demo.HOME}/oauth2/v2.0/token")
    assert "access_token" in home
    customer = run(*form, "-d", f"scope={ARM_SCOPE}", f"{emulator.base_url}/{demo.FABRIKAM}/oauth2/v2.0/token")
    subscriptions = run("-H", f"Authorization: Bearer {customer['access_token']}",
                        f"{emulator.base_url}/subscriptions?api-version=2022-12-01")
    assert [s["displayName"] for s in subscriptions["value"]] == ["Fabrikam Production"]
