"""The protocol: discovery, IMDS, the token endpoint, admin consent, Graph, ARM and the control endpoints.

Shapes and codes follow ENTRA_FACTS.md (shared/): errors carry `error_codes`, trace and correlation ids; IMDS values
are strings; FIC matching is exact on issuer, subject (case-sensitive) and audience.
"""
import html
import json
import re
import time
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode

import jwt

from emulator import signin, workload
from emulator.world import (
    ARM_RESOURCES,
    CLOUD_LOGIN_HOSTS,
    EXCHANGE_AUDIENCES,
    GRAPH_RESOURCES,
    TOKEN_EXCHANGE_APP_ID,
)

GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
FIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$")
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def _response(*args, **kwargs):
    from emulator.server import Response

    return Response(*args, **kwargs)


def entra_error_body(error: str, code: int, text: str) -> dict:
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    prefix = f"AADSTS{code}: " if code else ""
    return {"error": error, "error_description": f"{prefix}{text} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}", "error_codes": [code] if code else [], "timestamp": stamp, "trace_id": trace,
            "correlation_id": correlation, "error_uri": f"https://login.microsoftonline.com/error?code={code}"}


def entra_error(status: int, error: str, code: int, text: str):
    return _response(status, entra_error_body(error, code, text))


def issuer_for(tenant: dict) -> str:
    return f"https://{CLOUD_LOGIN_HOSTS[tenant['cloud']]}/{tenant['id']}/v2.0"


def _cloud_of_issuer(iss: str) -> str | None:
    for cloud, host in CLOUD_LOGIN_HOSTS.items():
        if iss.startswith(f"https://{host}/"):
            return cloud
    return None


def sign(emu, claims: dict, kid: str = "entra-1") -> str:
    return jwt.encode(claims, emu.keys.signing[kid], algorithm="RS256", headers={"kid": kid, "typ": "JWT"})


def route(emu, method, path, query, body, headers, kind):
    if kind == "control":
        return control(emu, method, path, body)
    if kind == "imds":
        return imds(emu, query, headers)
    if kind == "graph":
        return graph(emu, method, path, body, headers)
    if kind == "arm":
        return arm(emu, path, headers)
    if kind == "oidc_issuer":
        return oidc_issuer(emu, path)
    parts = [p for p in path.split("/") if p]
    if path == "/common/discovery/instance":
        return _response(200, {"tenant_discovery_endpoint": f"{emu.base_url}/{query.get('authorization_endpoint', 'common')}"
                               "/v2.0/.well-known/openid-configuration", "api-version": "1.1", "metadata": []})
    if not parts:
        return _response(404, {"error": "not_found"})
    tenant_name = parts[0]
    rest = "/".join(parts[1:])
    answer = signin.route(emu, method, tenant_name, rest, query, body)  # staff sign-in (OIDC): emulator/signin.py
    if answer is not None:
        return answer
    if rest in ("v2.0/.well-known/openid-configuration", ".well-known/openid-configuration"):
        return discovery(emu, tenant_name, v2=rest.startswith("v2.0"))
    if rest in ("discovery/v2.0/keys", "discovery/keys"):
        return _response(200, {"keys": [emu.keys.jwk("entra-1")]})
    if rest in ("oauth2/v2.0/token", "oauth2/token") and method == "POST":
        return token(emu, tenant_name, body)
    if rest in ("adminconsent", "v2.0/adminconsent"):
        return consent_page(emu, tenant_name, query, v2=rest.startswith("v2.0"))
    if rest == "adminconsent/decision" and method == "POST":
        return consent_decision(emu, tenant_name, body)
    return _response(404, {"error": "not_found", "error_description": f"No route for {method} {path}"})


# --- discovery ---------------------------------------------------------------------------------------------------
def discovery(emu, name: str, v2: bool):
    if name in ("common", "organizations", "consumers"):
        tenant_id, cloud, region = "{tenantid}", "global", ""
    else:
        tenant = emu.world.tenant(name)
        if tenant is None:
            return entra_error(400, "invalid_tenant", 90002, f"Tenant '{name}' not found. Check to make sure you have "
                               "the correct tenant ID and are signing into the correct cloud.")
        tenant_id, cloud, region = tenant["id"], tenant["cloud"], tenant["region"]
    host = CLOUD_LOGIN_HOSTS[cloud]
    base = f"{emu.base_url}/{tenant_id}"
    doc = {
        "token_endpoint": f"{base}/oauth2/v2.0/token" if v2 else f"{base}/oauth2/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{base}/discovery/v2.0/keys" if v2 else f"{base}/discovery/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"https://{host}/{tenant_id}/v2.0" if v2 else f"https://sts.windows.net/{tenant_id}/",
        "request_uri_parameter_supported": False,
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize" if v2 else f"{base}/oauth2/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "tenant_region_scope": region or None,
        "cloud_instance_name": {"global": "microsoftonline.com", "usgov": "microsoftonline.us",
                                "china": "partner.microsoftonline.cn"}[cloud],
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": {"global": "graph.microsoft.com", "usgov": "graph.microsoft.us",
                         "china": "microsoftgraph.chinacloudapi.cn"}[cloud],
    }
    return _response(200, doc)


# --- IMDS ----------------------------------------------------------------------------------------------------------
def imds(emu, query, headers):
    if headers.get("Metadata", "").lower() != "true":
        return _response(400, {"error": "bad_request_102", "error_description": "Required metadata header not specified"})
    if query.get("api-version") not in ("2018-02-01", "2019-08-01", "2019-11-01", "2021-02-01"):
        return _response(400, {"error": "invalid_request", "error_description": "Invalid or missing api-version"})
    resource = query.get("resource", "")
    if not resource:
        return _response(400, {"error": "invalid_resource", "error_description": "AADSTS500011: resource required"})
    selectors = [k for k in ("client_id", "object_id", "msi_res_id") if query.get(k)]
    if len(selectors) > 1:
        return _response(400, {"error": "invalid_request", "error_description": "Only one identity selector allowed"})
    mi = emu.world.identity(client_id=query.get("client_id"), principal_id=query.get("object_id"),
                            resource_id=query.get("msi_res_id"))
    if mi is None or not selectors:
        return _response(400, {"error": "invalid_request", "error_description": "Identity not found"})
    tenant = emu.world.tenant(mi["tenant"])
    now = int(time.time())  # the VM's IMDS is not skewed: clock skew shows at the token endpoint (700024)
    key = (mi["client_id"], resource)
    with emu.mi_cache_lock:
        cached = emu.mi_cache.get(key)
        # IMDS hands back its cached token (with a smaller expires_in) while it has > 5 minutes left.
        if cached is None or cached["exp"] - now < 300:
            aud = TOKEN_EXCHANGE_APP_ID if resource.rstrip("/") in EXCHANGE_AUDIENCES.values() else resource
            claims = {"aud": aud, "iss": issuer_for(tenant), "iat": now, "nbf": now, "exp": now + 86399,
                      "aio": uuid.uuid4().hex, "azp": mi["client_id"], "azpacr": "2", "idtyp": "app",
                      "oid": mi["principal_id"], "rh": "0.emulated.", "sub": mi["principal_id"], "tid": tenant["id"],
                      "uti": uuid.uuid4().hex[:22], "ver": "2.0", "xms_mirid": mi["resource_id"]}
            cached = {"token": sign(emu, claims), "exp": claims["exp"], "iat": now}
            emu.mi_cache[key] = cached
    return _response(200, {"access_token": cached["token"], "client_id": mi["client_id"],
                           "expires_in": str(cached["exp"] - now), "expires_on": str(cached["exp"]),
                           "ext_expires_in": str(cached["exp"] - now), "not_before": str(cached["iat"]),
                           "resource": resource, "token_type": "Bearer"})


# --- token endpoint ----------------------------------------------------------------------------------------------
def _verify_assertion(emu, assertion: str):
    """(claims, None) or (None, error response)."""
    try:
        header = jwt.get_unverified_header(assertion)
    except jwt.PyJWTError:
        return None, entra_error(400, "invalid_request", 50027, "JWT token is invalid or malformed.")
    kid = header.get("kid")
    if kid not in emu.keys.signing:
        return None, entra_error(401, "invalid_client", 700027, "Client assertion failed signature validation.")
    try:
        claims = jwt.decode(assertion, emu.keys.signing[kid].public_key(), algorithms=["RS256"],
                            options={"verify_exp": False, "verify_nbf": False, "verify_aud": False,
                                     "verify_iat": False})
    except jwt.PyJWTError:
        return None, entra_error(401, "invalid_client", 700027, "Client assertion failed signature validation.")
    now = emu.now()
    if claims.get("exp", 0) < now - 300 or claims.get("nbf", 0) > now + 300:
        when = datetime.fromtimestamp(now, UTC).strftime("%m/%d/%Y %H:%M:%S")
        return None, entra_error(400, "invalid_client", 700024, f"Client assertion is not within its valid time "
                                 f"range. Current time: {when}, assertion valid from "
                                 f"{datetime.fromtimestamp(claims.get('nbf', 0), UTC):%m/%d/%Y %H:%M:%S}, expiry time "
                                 f"of assertion {datetime.fromtimestamp(claims.get('exp', 0), UTC):%m/%d/%Y %H:%M:%S}.")
    return claims, None


def _aud_matches(fic_audience: str, token_aud) -> bool:
    auds = token_aud if isinstance(token_aud, list) else [token_aud]
    for aud in auds:
        if fic_audience == aud or (fic_audience in EXCHANGE_AUDIENCES.values() and aud == TOKEN_EXCHANGE_APP_ID):
            return True
    return False


def _match_fic(emu, app: dict, claims: dict):
    """None when a FIC matches, else the error response Entra gives for the nearest miss."""
    iss, sub, aud = claims.get("iss", ""), claims.get("sub", ""), claims.get("aud", "")
    fics = app["fics"]
    exact = [f for f in fics if f["issuer"] == iss and f["subject"] == sub and _aud_matches(f["audiences"][0], aud)]
    shown = f"The incoming assertion has issuer '{iss}', subject '{sub}' and audience '{aud}'"
    if exact:
        fic = exact[0]
        created = emu.world.fic_created_at.get(fic["id"])
        if created and time.time() - created < emu.fic_propagation_seconds:
            return entra_error(400, "invalid_request", 70021, f"No matching federated identity record found for "
                               f"presented assertion. {shown}. Please check your federated identity credential "
                               "Subject, Audience and Issuer against the presented assertion.")
        if claims.get("tid") and _cloud_of_issuer(iss) and claims["tid"] != app["tenant"]:
            return entra_error(400, "invalid_request", 700236, "Entra ID tokens issued by issuer "
                               f"'{iss}' may not be used for federated identity credential flows for applications "
                               "or managed identities registered in a different tenant.")
        return None
    if any(f["subject"] == sub and _aud_matches(f["audiences"][0], aud) for f in fics):
        return entra_error(401, "invalid_client", 700211, f"No matching federated identity record found for "
                           f"presented assertion issuer '{iss}'. Please check your federated identity credential "
                           "Subject, Audience and Issuer against the presented assertion.")
    if any(f["issuer"] == iss and f["subject"] == sub for f in fics):
        return entra_error(401, "invalid_client", 700212, f"No matching federated identity record found for "
                           f"presented assertion audience '{aud}'.")
    if any(f["issuer"] == iss and f["subject"].lower() == sub.lower() and _aud_matches(f["audiences"][0], aud)
           for f in fics):
        return entra_error(401, "invalid_client", 700213, f"No matching federated identity record found for "
                           f"presented assertion subject '{sub}'. Subjects are case-sensitive.")
    return entra_error(400, "invalid_request", 70021, f"No matching federated identity record found for presented "
                       f"assertion. {shown}. Please check your federated identity credential Subject, Audience and "
                       "Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/"
                       "workload-identity-federation")


def _resource_of(scope: str) -> str:
    first = scope.split()[0] if scope else ""
    return first[: -len("/.default")] if first.endswith("/.default") else first


def token(emu, tenant_name: str, body: bytes):
    form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    world = emu.world
    with world.lock:
        tenant = world.tenant(tenant_name)
        if tenant is None:
            return entra_error(400, "invalid_tenant", 90002, f"Tenant '{tenant_name}' not found. Check to make sure "
                               "you have the correct tenant ID and are signing into the correct cloud.")
        if form.get("grant_type") != "client_credentials":
            return entra_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        app = world.app(client_id)
        if app is None:
            return entra_error(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was "
                               f"not found in the directory '{tenant['display_name']}'. This can happen if the "
                               "application has not been installed by the administrator of the tenant or consented "
                               "to by any user in the tenant. You may have sent your authentication request to the "
                               "wrong tenant.")
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return entra_error(401, "invalid_client", 7000218, "The request body must contain the following "
                               "parameter: 'client_assertion' or 'client_secret'.")
        claims, error = _verify_assertion(emu, form["client_assertion"])
        if error:
            return error
        assertion_cloud = _cloud_of_issuer(claims.get("iss", ""))
        if assertion_cloud and assertion_cloud != tenant["cloud"]:
            return entra_error(400, "invalid_request", 90038, "Tenant is in a different national cloud than the "
                               "presented assertion; cross-cloud requests are not supported.")
        if assertion_cloud and (claims.get("idtyp") != "app" or "xms_mirid" not in claims):
            return entra_error(400, "invalid_request", 700222, "The assertion is an Entra ID token that is not an "
                               "app-only managed identity token.")
        if app.get("disabled"):
            return entra_error(400, "unauthorized_client", 7000112, f"Application '{app['app_id']}'"
                               f"({app['display_name']}) is disabled.")
        error = _match_fic(emu, app, claims)
        if error:
            return error
        sp = world.service_principal(tenant["id"], app["app_id"])
        if sp is not None and sp.get("disabled"):
            return entra_error(400, "unauthorized_client", 500014, f"The service principal for resource "
                               f"'{app['app_id']}' is disabled in tenant '{tenant['display_name']}'.")
        if sp is not None and sp.get("blocked_by_conditional_access"):
            return entra_error(400, "invalid_grant", 53003, "Access has been blocked by Conditional Access policies. "
                               "The access policy does not allow token issuance.")
        if sp is None:
            return entra_error(400, "unauthorized_client", 700016, f"Application with identifier '{app['app_id']}' "
                               f"was not found in the directory '{tenant['display_name']}'. This can happen if the "
                               "application has not been installed by the administrator of the tenant or consented "
                               "to by any user in the tenant. You may have sent your authentication request to the "
                               "wrong tenant.")
        resource = _resource_of(form.get("scope", ""))
        if resource in GRAPH_RESOURCES:
            roles = world.data["graph_permissions"].get(app["app_id"], []) if sp.get("home") else []
        elif resource in ARM_RESOURCES:
            roles = []
        else:
            return entra_error(400, "invalid_resource", 500011, f"The resource principal named {resource} was not "
                               f"found in the tenant named {tenant['display_name']}.")
    now = int(emu.now())
    claims_out = {"aud": resource, "iss": issuer_for(tenant), "iat": now, "nbf": now, "exp": now + 3599,
                  "aio": uuid.uuid4().hex, "app_displayname": app["display_name"], "appid": app["app_id"],
                  "azp": app["app_id"], "appidacr": "2", "idp": issuer_for(tenant), "idtyp": "app",
                  "oid": sp["object_id"], "sub": sp["object_id"], "tid": tenant["id"], "ver": "2.0",
                  "uti": uuid.uuid4().hex[:22]}
    if roles:
        claims_out["roles"] = roles
    return _response(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                           "access_token": sign(emu, claims_out)})


# --- admin consent -----------------------------------------------------------------------------------------------
def _consent_error_page(title: str, code: int, text: str, status=400):
    page = (f"<!doctype html><html><head><title>Sign in</title></head><body><h1>{html.escape(title)}</h1>"
            f"<p id='error'>AADSTS{code}: {html.escape(text)}</p></body></html>")
    return _response(status, page, content_type="text/html; charset=utf-8")


def consent_page(emu, tenant_name: str, query: dict, v2: bool):
    world = emu.world
    app = world.app(query.get("client_id", ""))
    if app is None:
        return _consent_error_page("Sorry, but we're having trouble signing you in.", 700016,
                                   f"Application with identifier '{query.get('client_id', '')}' was not found.")
    redirect_uri = query.get("redirect_uri", "")
    if redirect_uri not in app["redirect_uris"]:
        return _consent_error_page("Sorry, but we're having trouble signing you in.", 50011,
                                   f"The redirect URI '{redirect_uri}' specified in the request does not match the "
                                   f"redirect URIs configured for the application '{app['app_id']}'.")
    if v2 and not query.get("scope"):
        return _consent_error_page("Sorry, but we're having trouble signing you in.", 90014,
                                   "The required field 'scope' is missing from the credential.")
    if v2 and tenant_name == "common":
        return _consent_error_page("Sorry, but we're having trouble signing you in.", 90130,
                                   "Application does not support 'common' on the v2.0 admin consent endpoint.")
    fixed = world.tenant(tenant_name) if tenant_name not in ("common", "organizations") else None
    if tenant_name not in ("common", "organizations") and fixed is None:
        return _consent_error_page("Sorry, but we're having trouble signing you in.", 90002,
                                   f"Tenant '{tenant_name}' not found.")
    options = [fixed] if fixed else [t for t in world.data["tenants"] if t["id"] != app["tenant"]]
    choose = "".join(f"<option value='{t['id']}'>{html.escape(t['display_name'])} ({html.escape(t['domains'][0] if t['domains'] else t['id'])})</option>"
                     for t in options)
    hidden = "".join(f"<input type='hidden' name='{k}' value='{html.escape(query.get(k, ''), quote=True)}'>"
                     for k in ("client_id", "redirect_uri", "state", "scope"))
    permissions = html.escape(query.get("scope", "")) or "the permissions the application requests"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Permissions requested</title>
<style>body{{font-family:sans-serif;max-width:36rem;margin:3rem auto}}button{{padding:.5rem 1.5rem;margin-right:1rem}}</style>
</head><body><h1>Permissions requested</h1><h2 id="app-name">{html.escape(app['display_name'])}</h2>
<p>This application is not published by Microsoft. Accept for your organization to let it: {permissions}.</p>
<form method="post" action="{emu.base_url}/{html.escape(tenant_name)}/adminconsent/decision">
{hidden}<input type='hidden' name='version' value='{"v2" if v2 else "v1"}'>
<label>Signed in as an administrator of <select name="signin_tenant">{choose}</select></label>
<p><button type="submit" name="action" value="accept" id="accept">Accept</button>
<button type="submit" name="action" value="cancel" id="cancel">Cancel</button></p></form></body></html>"""
    return _response(200, page, content_type="text/html; charset=utf-8")


def consent_decision(emu, tenant_name: str, body: bytes):
    form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items()}
    world = emu.world
    app = world.app(form.get("client_id", ""))
    redirect_uri = form.get("redirect_uri", "")
    if app is None or redirect_uri not in app["redirect_uris"]:
        return _consent_error_page("Sorry, but we're having trouble signing you in.", 50011,
                                   "The redirect URI specified in the request does not match.")
    signin = world.tenant(form.get("signin_tenant", "")) or world.tenant(tenant_name)
    params = {}
    if form.get("action") != "accept":
        params = {"error": "access_denied", "error_description": "AADSTS65004: User declined to consent to access "
                  "the app. Trace ID: " + str(uuid.uuid4()), "state": form.get("state", "")}
    elif signin is None:
        params = {"error": "invalid_request", "error_description": "AADSTS90002: Tenant not found.",
                  "state": form.get("state", "")}
    else:
        with world.lock:
            if world.service_principal(signin["id"], app["app_id"]) is None:
                world.data["service_principals"].append(
                    {"tenant": signin["id"], "app_id": app["app_id"], "object_id": str(uuid.uuid4())})
                world.save()
        params = {"admin_consent": "True", "tenant": signin["id"], "state": form.get("state", "")}
        if form.get("version") == "v2":
            params["scope"] = form.get("scope", "")
    separator = "&" if "?" in redirect_uri else "?"
    return _response(302, b"", headers={"Location": redirect_uri + separator + urlencode(params)})


# --- bearer tokens for Graph and ARM -------------------------------------------------------------------------------
def _bearer(emu, headers, resources: dict):
    auth = headers.get("Authorization", "")
    if not auth.startswith("Bearer "):
        return None, "InvalidAuthenticationToken", "Access token is empty."
    try:
        claims = jwt.decode(auth[7:], emu.keys.signing["entra-1"].public_key(), algorithms=["RS256"],
                            options={"verify_aud": False, "verify_exp": False, "verify_iat": False,
                                     "verify_nbf": False})
    except jwt.PyJWTError:
        return None, "InvalidAuthenticationToken", "Access token validation failure."
    if claims.get("exp", 0) < emu.now():
        return None, "ExpiredAuthenticationToken", "The access token has expired."
    if claims.get("aud", "").rstrip("/") not in resources:
        return None, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience."
    return claims, None, None


# --- ARM -----------------------------------------------------------------------------------------------------------
def arm(emu, path: str, headers):
    claims, code, message = _bearer(emu, headers, ARM_RESOURCES)
    correlation = {"x-ms-correlation-request-id": str(uuid.uuid4())}
    if claims is None:
        return _response(401, {"error": {"code": code, "message": message}}, headers=correlation)
    tenant_id, principal = claims["tid"], claims["oid"]
    world = emu.world
    with world.lock:
        if path.rstrip("/") == "/subscriptions":
            subs = world.subscriptions_for(tenant_id, principal)
            value = [{"id": f"/subscriptions/{s['subscription_id']}", "subscriptionId": s["subscription_id"],
                      "tenantId": tenant_id, "displayName": s["display_name"], "state": "Enabled",
                      "authorizationSource": "RoleBased"} for s in subs]
            return _response(200, {"value": value, "count": {"type": "Total", "value": len(value)}}, headers=correlation)
        resource_id = path.rstrip("/")
        match = re.match(r"^/subscriptions/([^/]+)", resource_id)
        sub = next((s for s in world.data["subscriptions"] if match and s["tenant"] == tenant_id
                    and s["subscription_id"].lower() == match.group(1).lower()), None)
        if sub is None:
            return _response(404, {"error": {"code": "SubscriptionNotFound",
                                             "message": f"The subscription '{match.group(1) if match else ''}' "
                                             "could not be found."}}, headers=correlation)
        if not world.roles_on(tenant_id, principal, resource_id):
            return _response(403, {"error": {"code": "AuthorizationFailed", "message": (
                f"The client '{claims.get('appid')}' with object id '{principal}' does not have authorization to "
                f"perform action 'Microsoft.Resources/subscriptions/read' over scope '{resource_id}' or the scope "
                "is invalid. If access was recently granted, please refresh your credentials.")}}, headers=correlation)
        name = resource_id.rsplit("/", 1)[-1]
        return _response(200, {"id": resource_id, "name": name, "subscriptionId": sub["subscription_id"],
                               "displayName": sub["display_name"] if resource_id.count("/") == 2 else name,
                               "type": "Microsoft.Resources/subscriptions" if resource_id.count("/") == 2 else
                               "Microsoft.Resources/resource"}, headers=correlation)


# --- Graph ---------------------------------------------------------------------------------------------------------
def graph_error(status: int, code: str, message: str):
    return _response(status, {"error": {"code": code, "message": message, "innerError": {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4())}}})


READ_ROLES = {"Application.Read.All", "Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"}
WRITE_ROLES = {"Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"}


def _fic_json(fic: dict) -> dict:
    return {"id": fic["id"], "name": fic["name"], "issuer": fic["issuer"], "subject": fic["subject"],
            "audiences": fic["audiences"], "description": fic.get("description") or None}


def _app_json(app: dict) -> dict:
    return {"id": app["object_id"], "appId": app["app_id"], "displayName": app["display_name"],
            "signInAudience": app["sign_in_audience"], "web": {"redirectUris": app["redirect_uris"]},
            "identifierUris": app.get("identifier_uris", [])}


def _validate_fic(app: dict, data: dict, existing: dict | None):
    name = data.get("name", existing["name"] if existing else "")
    if existing is None and not FIC_NAME.match(name or ""):
        return "Invalid value specified for property 'name' of resource 'FederatedIdentityCredential'."
    audiences = data.get("audiences", existing["audiences"] if existing else None)
    if not isinstance(audiences, list) or len(audiences) != 1:
        return "Invalid value specified for property 'audiences' of resource 'FederatedIdentityCredential'."
    for field in ("issuer", "subject"):
        value = data.get(field, existing[field] if existing else None)
        if not value or len(value) > 600:
            return f"Invalid value specified for property '{field}' of resource 'FederatedIdentityCredential'."
    if len(audiences[0]) > 600 or len(data.get("description") or "") > 600:
        return "Invalid value specified for property 'audiences' of resource 'FederatedIdentityCredential'."
    return None


def graph(emu, method: str, path: str, body: bytes, headers):
    claims, code, message = _bearer(emu, headers, GRAPH_RESOURCES)
    if claims is None:
        return graph_error(401, code, message)
    roles = set(claims.get("roles", []))
    world = emu.world
    m = re.match(r"^/v1\.0/(applications|servicePrincipals)(?:\(appId='([^']+)'\)|/([0-9a-fA-F-]{36}))(.*)$", path)
    if not m:
        return graph_error(400, "BadRequest", f"Resource not found for the segment '{path}'.")
    collection, app_id, object_id, rest = m.groups()
    with world.lock:
        app = world.app(app_id) if app_id else world.app_by_object_id(object_id)
        if app is None or app["tenant"] != claims["tid"]:
            return graph_error(404, "Request_ResourceNotFound", f"Resource '{app_id or object_id}' does not exist or "
                               "one of its queried reference-property objects are not present.")
        if not roles & READ_ROLES:
            return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        if collection == "servicePrincipals":
            return _response(200, {"id": app["object_id"], "appId": app["app_id"],
                                   "displayName": app["display_name"], "accountEnabled": not app["disabled"],
                                   "servicePrincipalType": "Application"})
        if not rest:
            return _response(200, _app_json(app))
        m2 = re.match(r"^/federatedIdentityCredentials(?:/(?:\(name='([^']+)'\)|([^/]+)))?$", rest)
        if not m2:
            return graph_error(400, "BadRequest", f"Resource not found for the segment '{rest}'.")
        by_name, by_id = m2.groups()
        fics = app["fics"]
        if not by_name and not by_id:
            if method == "GET":
                return _response(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications"
                                       "('" + app["object_id"] + "')/federatedIdentityCredentials",
                                       "value": [_fic_json(f) for f in fics]})
            if method != "POST":
                return graph_error(405, "Request_BadRequest", "Method not allowed.")
            if not roles & WRITE_ROLES:
                return graph_error(403, "Authorization_RequestDenied",
                                   "Insufficient privileges to complete the operation.")
            data = json.loads(body or b"{}")
            problem = _validate_fic(app, data, None)
            if problem:
                return graph_error(400, "Request_BadRequest", problem)
            if any(f["name"] == data["name"] for f in fics):
                return graph_error(409, "Request_MultipleObjectsWithSameKeyValue",
                                   "FederatedIdentityCredential with name " + data["name"] + " already exists.")
            if any(f["issuer"] == data["issuer"] and f["subject"] == data["subject"] for f in fics):
                return graph_error(400, "Request_BadRequest", "A federated identity credential with this issuer "
                                   "and subject already exists on the application.")
            if len(fics) >= 20:
                return graph_error(400, "Request_BadRequest", "The application has reached the maximum number of "
                                   "federated identity credentials (20).")
            fic = {"id": str(uuid.uuid4()), "name": data["name"], "issuer": data["issuer"],
                   "subject": data["subject"], "audiences": data["audiences"],
                   "description": data.get("description") or ""}
            fics.append(fic)
            world.fic_created_at[fic["id"]] = time.time()
            world.save()
            return _response(201, _fic_json(fic))
        fic = next((f for f in fics if (by_name and f["name"] == by_name) or (by_id and f["id"] == by_id)), None)
        if fic is None:
            return graph_error(404, "Request_ResourceNotFound", f"Resource '{by_name or by_id}' does not exist.")
        if method == "GET":
            return _response(200, _fic_json(fic))
        if not roles & WRITE_ROLES:
            return graph_error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
        if method == "DELETE":
            fics.remove(fic)
            world.save()
            return _response(204, b"")
        if method == "PATCH":
            data = json.loads(body or b"{}")
            if "name" in data and data["name"] != fic["name"]:
                return graph_error(400, "Request_BadRequest", "Property 'name' is read-only and cannot be changed.")
            problem = _validate_fic(app, data, fic)
            if problem:
                return graph_error(400, "Request_BadRequest", problem)
            fic.update({k: data[k] for k in ("issuer", "subject", "audiences", "description") if k in data})
            world.save()
            return _response(204, b"")
        return graph_error(405, "Request_BadRequest", "Method not allowed.")


# --- external OIDC issuers ("other issuer" FICs) --------------------------------------------------------------------
def oidc_issuer(emu, path: str):
    m = re.match(r"^/_issuers/([^/]+)/(\.well-known/openid-configuration|jwks)$", path)
    issuer = emu.world.issuer(m.group(1)) if m else None
    if issuer is None:
        return _response(404, {"error": "not_found"})
    if m.group(2) == "jwks":
        return _response(200, {"keys": [emu.keys.jwk("oidc-1")]})
    return _response(200, {"issuer": issuer["issuer"], "jwks_uri": f"{emu.base_url}/_issuers/{m.group(1)}/jwks",
                           "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                           "id_token_signing_alg_values_supported": ["RS256"]})


# --- control -------------------------------------------------------------------------------------------------------
def control(emu, method: str, path: str, body: bytes):
    action = path[len("/_emulator/"):].strip("/")
    data = json.loads(body or b"{}") if method == "POST" else {}
    world = emu.world
    if action.startswith("signin/"):
        return signin.control(emu, action, data)
    if action == "requests" and method == "GET":
        return _response(200, emu.log.snapshot())
    if action == "requests/reset":
        emu.log.reset()
    elif action == "reset":
        emu.reset()
    elif action == "faults":
        emu.faults.configure(data)
    elif action == "clock":
        emu.skew_seconds = float(data.get("skew_seconds", 0))
    elif action == "fic-propagation":
        emu.fic_propagation_seconds = float(data.get("seconds", 0))
    elif action in ("consent/revoke", "roles/remove", "roles/add", "apps/disable", "apps/redirect-uris",
                    "service-principals/disable", "conditional-access/block"):
        with world.lock:
            app = world.app(data.get("app_id", ""))
            tenant = world.tenant(data.get("tenant", "")) if data.get("tenant") else None
            if app is None or (action.startswith(("consent", "roles")) and tenant is None):
                return _response(404, {"error": "unknown app or tenant"})
            if action in ("service-principals/disable", "conditional-access/block"):
                sp = next((sp for sp in world.data["service_principals"] if sp["tenant"] == tenant["id"]
                           and sp["app_id"] == app["app_id"]), None)
                if sp is None:
                    return _response(409, {"error": "no consent in that tenant"})
                key = "disabled" if action.startswith("service") else "blocked_by_conditional_access"
                sp[key] = bool(data.get("on", True))
            elif action == "consent/revoke":
                world.data["service_principals"] = [sp for sp in world.data["service_principals"] if not (
                    sp["tenant"] == tenant["id"] and sp["app_id"] == app["app_id"])]
            elif action in ("roles/remove", "roles/add"):
                sp = world.service_principal(tenant["id"], app["app_id"])
                if sp is None:
                    return _response(409, {"error": "no consent in that tenant"})
                if action == "roles/remove":
                    world.data["role_assignments"] = [r for r in world.data["role_assignments"] if not (
                        r["tenant"] == tenant["id"] and r["principal"] == sp["object_id"])]
                else:
                    world.data["role_assignments"].append({
                        "tenant": tenant["id"], "principal": sp["object_id"], "role": data.get("role", "Reader"),
                        "scope": f"/subscriptions/{data['subscription_id']}"})
            elif action == "apps/disable":
                app["disabled"] = bool(data.get("disabled", True))
            else:
                app["redirect_uris"] = sorted(set(app["redirect_uris"]) | set(data.get("add", [])))
            world.save()
    elif action.startswith("workload/"):  # the automation API's workload tokens (emulator/workload.py)
        return workload.control(emu, action, data)
    elif action.startswith("issuers/") and action.endswith("/token"):
        issuer = world.issuer(action.split("/")[1])
        if issuer is None:
            return _response(404, {"error": "unknown issuer"})
        now = int(emu.now())
        claims = {"iss": issuer["issuer"], "sub": data.get("subject", "repo:contoso/app:ref:refs/heads/main"),
                  "aud": data.get("audience", "api://AzureADTokenExchange"), "iat": now, "nbf": now,
                  "exp": now + 600}
        return _response(200, {"token": sign(emu, claims, kid="oidc-1")})
    else:
        return _response(404, {"error": f"unknown control action {action}"})
    return _response(200, {"ok": True})
