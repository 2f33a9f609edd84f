"""The login host: instance discovery, each tenant's OpenID configuration and keys, the token endpoint and admin
consent, under `/{tenant}/...` (a GUID, a verified domain, `common` or `organizations`).
"""
from emulator import consent, signin, token
from emulator.protocol import Response, parse_form, tenant_not_found
from emulator.world import CLOUD_LOGIN_HOSTS

INSTANCES = {"global": "microsoftonline.com", "usgov": "microsoftonline.us", "china": "partner.microsoftonline.cn"}
GRAPH_HOSTS = {"global": "graph.microsoft.com", "usgov": "graph.microsoft.us", "china": "microsoftgraph.chinacloudapi.cn"}
DISCOVERY = ("v2.0/.well-known/openid-configuration", ".well-known/openid-configuration")
TOKEN = ("oauth2/v2.0/token", "oauth2/token")


def instance_discovery(emu, query) -> Response:
    authority = query.get("authorization_endpoint", "common")
    return Response(200, {"tenant_discovery_endpoint": f"{emu.base_url}/{authority}/v2.0/.well-known/"
                          "openid-configuration", "api-version": "1.1", "metadata": []})


def discovery(emu, name: str, v2: bool) -> Response:
    if name in ("common", "organizations", "consumers"):
        tenant_id, cloud, region = "{tenantid}", "global", ""
    else:
        tenant = emu.world.tenant(name)
        if tenant is None:
            return tenant_not_found(name)
        tenant_id, cloud, region = tenant["id"], tenant["cloud"], tenant["region"]
    base = f"{emu.base_url}/{tenant_id}"
    version = "/v2.0" if v2 else ""
    return Response(200, {
        "token_endpoint": f"{base}/oauth2{version}/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/discovery{version}/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"https://{CLOUD_LOGIN_HOSTS[cloud]}/{tenant_id}/v2.0" if v2 else f"https://sts.windows.net/{tenant_id}/",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{base}/oauth2{version}/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "tenant_region_scope": region or None,
        "cloud_instance_name": INSTANCES[cloud],
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": GRAPH_HOSTS[cloud],
    })


def route(emu, method: str, path: str, query: dict, body: bytes) -> Response:
    if path == "/common/discovery/instance":
        return instance_discovery(emu, query)
    parts = [p for p in path.split("/") if p]
    if not parts:
        return Response(404, {"error": "not_found"})
    tenant_name, rest = parts[0], "/".join(parts[1:])
    answer = signin.route(emu, method, tenant_name, rest, query, body)  # staff sign-in (OIDC): emulator/signin.py
    if answer is not None:
        return answer
    if rest in DISCOVERY:
        return discovery(emu, tenant_name, v2=rest.startswith("v2.0"))
    if rest in ("discovery/v2.0/keys", "discovery/keys"):
        return Response(200, {"keys": [emu.keys.jwk("entra-1")]})
    if rest in TOKEN and method == "POST":
        return token.client_credentials(emu, tenant_name, parse_form(body), v1=rest == "oauth2/token")
    if rest in ("adminconsent", "v2.0/adminconsent"):
        return consent.page(emu, tenant_name, query, v2=rest.startswith("v2.0"))
    if rest == "adminconsent/decision" and method == "POST":
        return consent.decision(emu, tenant_name, body)
    return Response(404, {"error": "not_found", "error_description": f"No route for {method} {path}"})
