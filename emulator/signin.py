"""Staff sign-in (OpenID Connect, authorization code flow with PKCE): `/authorize` with a sign-in page listing the
world's users, code redemption at the token endpoint, ID tokens with Entra's v2 claims, and errors as Entra gives them.

Codes live in memory (single-use, 10 minutes). A control endpoint can spoil the next ID token (another tenant, audience,
expiry, signing key, no nonce) so that the relying party's validation can be tested against a real token endpoint.
"""
import base64
import hashlib
import html
import secrets
import threading
import time
import uuid
from urllib.parse import parse_qs, urlencode

import jwt

from emulator import handlers as core

CODE_SECONDS = 600  # Entra's authorization codes live about 10 minutes
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
SORRY = "Sorry, but we're having trouble signing you in."


class SigninState:
    """Issued codes and the one-shot ID-token spoiler, per emulator."""

    def __init__(self):
        self.lock = threading.Lock()
        self.codes: dict[str, dict] = {}
        self.spoil: dict | None = None

    def reset(self):
        with self.lock:
            self.codes.clear()
            self.spoil = None


def state_of(emu) -> SigninState:
    state = getattr(emu, "_signin", None)
    if state is None:
        state = emu._signin = SigninState()
    return state


def _page(title: str, body: str, status=200):
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif;max-width:40rem;margin:3rem auto}li{margin:.5rem 0}"
            "button{padding:.4rem 1rem;min-width:22rem;text-align:left}small{color:#555}</style></head>"
            f"<body>{body}</body></html>")
    return core._response(status, page, content_type="text/html; charset=utf-8")


def _error_page(code: int, text: str, status=400):
    return _page("Sign in to your account", f"<h1>{html.escape(SORRY)}</h1><p id='error'>AADSTS{code}: "
                 f"{html.escape(text)}</p>", status)


def _redirect(redirect_uri: str, params: dict):
    separator = "&" if "?" in redirect_uri else "?"
    return core._response(302, b"", headers={"Location": redirect_uri + separator + urlencode(params)})


def _users_of(world, tenant_id: str) -> list[dict]:
    return [u for u in world.data.get("users", []) if u["tenant"] == tenant_id]


def _check_request(emu, tenant_name: str, params: dict):
    """(tenant, app) or an error page: problems Entra shows on its own page, never redirecting (unknown tenant,
    unknown client, unregistered redirect URI)."""
    world = emu.world
    tenant = world.tenant(tenant_name)
    if tenant is None:
        return None, None, _error_page(90002, f"Tenant '{tenant_name}' not found. Check to make sure you have the "
                                       "correct tenant ID and are signing into the correct cloud.")
    client_id = params.get("client_id", "")
    app = world.app(client_id)
    if app is None or (app["sign_in_audience"] == "AzureADMyOrg" and app["tenant"] != tenant["id"]):
        return None, None, _error_page(700016, f"Application with identifier '{client_id}' was not found in the "
                                       f"directory '{tenant['display_name']}'. This can happen if the application "
                                       "has not been installed by the administrator of the tenant or consented to by "
                                       "any user in the tenant. You may have sent your authentication request to the "
                                       "wrong tenant.")
    redirect_uri = params.get("redirect_uri", "")
    if redirect_uri not in app["redirect_uris"]:
        return None, None, _error_page(50011, f"The redirect URI '{redirect_uri}' specified in the request does not "
                                       f"match the redirect URIs configured for the application '{app['app_id']}'. "
                                       "Make sure the redirect URI sent in the request matches one added to your "
                                       "application in the Azure portal.")
    return tenant, app, None


def authorize(emu, tenant_name: str, query: dict):
    tenant, app, error = _check_request(emu, tenant_name, query)
    if error:
        return error
    redirect_uri, state = query["redirect_uri"], query.get("state", "")
    if query.get("response_type") != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", "error_description":
                                        "AADSTS700054: response_type 'id_token' is not enabled for the application.",
                                        "state": state})
    if "openid" not in query.get("scope", "").split():
        return _redirect(redirect_uri, {"error": "invalid_request", "error_description": "AADSTS900144: The request "
                                        "body must contain the following parameter: 'scope' with 'openid'.",
                                        "state": state})
    if query.get("code_challenge") and query.get("code_challenge_method", "plain") not in ("S256", "plain"):
        return _redirect(redirect_uri, {"error": "invalid_request", "error_description": "AADSTS501491: Invalid "
                                        "size of Code_Challenge parameter.", "state": state})
    hidden = "".join(f"<input type='hidden' name='{k}' value='{html.escape(query.get(k, ''), quote=True)}'>"
                     for k in ("client_id", "redirect_uri", "state", "nonce", "scope", "code_challenge",
                               "code_challenge_method"))
    items = []
    for user in _users_of(emu.world, tenant["id"]):
        roles = user.get("app_roles", {}).get(app["app_id"], [])
        shown = ", ".join(roles) if roles else "no app role"
        mfa = "did MFA" if user.get("mfa") else "password only (no MFA)"
        items.append(f"<li><button type='submit' name='user' value='{html.escape(user['oid'], quote=True)}' "
                     f"data-upn='{html.escape(user['upn'], quote=True)}'>{html.escape(user['display_name'])} "
                     f"&lt;{html.escape(user['upn'])}&gt;</button><br><small class='roles'>App roles: "
                     f"{html.escape(shown)} · {mfa}</small></li>")
    people = "".join(items) or "<li>No users in this directory.</li>"
    body = (f"<h1>Sign in</h1><h2 id='app-name'>{html.escape(app['display_name'])}</h2>"
            f"<p>{html.escape(tenant['display_name'])} · pick an account</p>"
            f"<form method='post' action='{emu.base_url}/{html.escape(tenant_name)}/oauth2/v2.0/authorize/decision'>"
            f"{hidden}<ul id='accounts'>{people}</ul>"
            "<p><button type='submit' name='user' value='' id='cancel'>Cancel</button></p></form>")
    return _page("Sign in to your account", body)


def decision(emu, tenant_name: str, body: bytes):
    form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace"), keep_blank_values=True).items()}
    tenant, app, error = _check_request(emu, tenant_name, form)
    if error:
        return error
    redirect_uri, state = form["redirect_uri"], form.get("state", "")
    user = next((u for u in _users_of(emu.world, tenant["id"]) if u["oid"] == form.get("user")), None)
    if not form.get("user"):
        return _redirect(redirect_uri, {"error": "access_denied", "error_description": "AADSTS50126: The user "
                                        "cancelled the sign-in.", "state": state})
    if user is None:
        return _redirect(redirect_uri, {"error": "invalid_request", "error_description": "AADSTS50020: User account "
                                        "from identity provider does not exist in tenant "
                                        f"'{tenant['display_name']}'.", "state": state})
    code = secrets.token_urlsafe(48)
    with state_of(emu).lock:
        state_of(emu).codes[code] = {
            "client_id": app["app_id"], "tenant": tenant["id"], "redirect_uri": redirect_uri, "user": user["oid"],
            "nonce": form.get("nonce", ""), "scope": form.get("scope", ""), "issued": time.time(), "used": False,
            "challenge": form.get("code_challenge", ""), "method": form.get("code_challenge_method") or "plain"}
    return _redirect(redirect_uri, {"code": code, "state": state, "session_state": str(uuid.uuid4())})


def _pkce_ok(record: dict, verifier: str) -> bool:
    if not record["challenge"]:
        return True
    if record["method"] == "S256":
        digest = hashlib.sha256(verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == record["challenge"]
    return verifier == record["challenge"]


def _authenticate_client(emu, tenant: dict, app: dict, form: dict):
    """The client proves itself with a federated credential: a managed-identity token as client assertion."""
    if form.get("client_assertion_type") != core.ASSERTION_TYPE or not form.get("client_assertion"):
        return core.entra_error(401, "invalid_client", 7000218, "The request body must contain the following "
                                "parameter: 'client_assertion' or 'client_secret'.")
    claims, error = core._verify_assertion(emu, form["client_assertion"])
    if error:
        return error
    cloud = core._cloud_of_issuer(claims.get("iss", ""))
    if cloud and cloud != tenant["cloud"]:
        return core.entra_error(400, "invalid_request", 90038, "Tenant is in a different national cloud than the "
                                "presented assertion; cross-cloud requests are not supported.")
    if cloud and (claims.get("idtyp") != "app" or "xms_mirid" not in claims):
        return core.entra_error(400, "invalid_request", 700222, "The assertion is an Entra ID token that is not an "
                                "app-only managed identity token.")
    if app.get("disabled"):
        return core.entra_error(400, "unauthorized_client", 7000112, f"Application '{app['app_id']}'"
                                f"({app['display_name']}) is disabled.")
    return core._match_fic(emu, app, claims)


def _grant_error(code: int, text: str):
    return core.entra_error(400, "invalid_grant", code, text)


def token_by_code(emu, tenant_name: str, form: dict):
    world = emu.world
    with world.lock:
        tenant = world.tenant(tenant_name)
        if tenant is None:
            return core.entra_error(400, "invalid_tenant", 90002, f"Tenant '{tenant_name}' not found.")
        client_id = form.get("client_id", "")
        app = world.app(client_id)
        if app is None:
            return core.entra_error(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' "
                                    f"was not found in the directory '{tenant['display_name']}'.")
        error = _authenticate_client(emu, tenant, app, form)
        if error:
            return error
        signin = state_of(emu)
        with signin.lock:
            record = signin.codes.get(form.get("code", ""))
            if record is None or record["tenant"] != tenant["id"]:
                return _grant_error(70000, "The provided value for the 'code' parameter is not valid.")
            if record["client_id"] != app["app_id"]:
                return _grant_error(70000, "The provided authorization code was issued to another client.")
            if record["used"]:
                return _grant_error(54005, "OAuth2 Authorization code was already redeemed, please retry with a new "
                                    "valid code or use an existing refresh token.")
            if time.time() - record["issued"] > CODE_SECONDS:
                return _grant_error(70008, "The provided authorization code or refresh token has expired due to "
                                    "inactivity. Send a new interactive authorization request for this user and "
                                    "resource.")
            if form.get("redirect_uri", "") != record["redirect_uri"]:
                return _grant_error(500112, f"The reply address '{form.get('redirect_uri', '')}' does not match the "
                                    f"reply address '{record['redirect_uri']}' provided when requesting "
                                    "Authorization code.")
            if not _pkce_ok(record, form.get("code_verifier", "")):
                return _grant_error(501481, "The Code_Verifier does not match the code_challenge supplied in the "
                                    "authorization request.")
            record["used"] = True
            spoil, signin.spoil = signin.spoil, None
        user = next((u for u in world.data.get("users", []) if u["oid"] == record["user"]), None)
        if user is None:
            return _grant_error(50034, "The user account does not exist in the directory.")
        roles = list(user.get("app_roles", {}).get(app["app_id"], []))
        groups = list(user.get("groups", []))
    now = int(emu.now())
    issuer = core.issuer_for(tenant)
    claims = {"aud": app["app_id"], "iss": issuer, "iat": now, "nbf": now, "exp": now + 3600,
              "aio": uuid.uuid4().hex, "amr": ["pwd", "mfa"] if user.get("mfa") else ["pwd"],
              "name": user["display_name"], "nonce": record["nonce"], "oid": user["oid"],
              "preferred_username": user["upn"], "rh": "0.emulated.", "sid": str(uuid.uuid4()),
              "sub": base64.urlsafe_b64encode(hashlib.sha256(f"{user['oid']}:{app['app_id']}".encode()).digest())
              .rstrip(b"=").decode()[:43], "tid": tenant["id"], "uti": uuid.uuid4().hex[:22], "ver": "2.0"}
    if not record["nonce"]:
        del claims["nonce"]
    if roles:
        claims["roles"] = roles
    if groups:
        claims["groups"] = groups
    key = "entra-1"
    if spoil:
        claims.update(spoil.get("set", {}))
        if "exp_offset" in spoil:
            claims["exp"] = now + int(spoil["exp_offset"])
            claims["iat"] = claims["nbf"] = claims["exp"] - 3600
        for name in spoil.get("drop", []):
            claims.pop(name, None)
        key = spoil.get("sign_with", key)
    access = {"aud": GRAPH_APP_ID, "iss": f"https://sts.windows.net/{tenant['id']}/", "iat": now, "nbf": now,
              "exp": now + 3599, "appid": app["app_id"], "oid": user["oid"], "scp": "openid profile email User.Read",
              "tid": tenant["id"], "upn": user["upn"], "ver": "1.0"}
    client_info = base64.urlsafe_b64encode(f'{{"uid":"{user["oid"]}","utid":"{tenant["id"]}"}}'.encode())
    return core._response(200, {"token_type": "Bearer", "scope": "openid profile email User.Read",
                                "expires_in": 3599, "ext_expires_in": 3599, "access_token": core.sign(emu, access),
                                "id_token": jwt.encode(claims, emu.keys.signing[key], algorithm="RS256",
                                                       headers={"kid": "entra-1", "typ": "JWT"}),
                                "client_info": client_info.rstrip(b"=").decode()})


def route(emu, method: str, tenant_name: str, rest: str, query: dict, body: bytes):
    """The sign-in endpoints under /{tenant}/..., or None for another handler."""
    if rest in ("oauth2/v2.0/authorize",) and method == "GET":
        return authorize(emu, tenant_name, query)
    if rest == "oauth2/v2.0/authorize/decision" and method == "POST":
        return decision(emu, tenant_name, body)
    # The token endpoint's hot path (client credentials, thousands a sweep) is only looked at, not parsed, here.
    if rest == "oauth2/v2.0/token" and method == "POST" and b"grant_type=authorization_code" in body:
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        if form.get("grant_type") == "authorization_code":
            return token_by_code(emu, tenant_name, form)
    return None


def control(emu, action: str, data: dict):
    """/_emulator/signin/...: app-role assignments, MFA, and the spoiler of the next ID token."""
    world = emu.world
    if action == "signin/id-token":
        with state_of(emu).lock:
            state_of(emu).spoil = {k: data[k] for k in ("set", "drop", "exp_offset", "sign_with") if k in data}
        return core._response(200, {"ok": True})
    if action in ("signin/app-roles", "signin/mfa"):
        with world.lock:
            name = str(data.get("user", "")).lower()
            user = next((u for u in world.data.get("users", []) if name in (u["oid"].lower(), u["upn"].lower())),
                        None)
            if user is None:
                return core._response(404, {"error": "unknown user"})
            if action == "signin/mfa":
                user["mfa"] = bool(data.get("on", True))
            else:
                if world.app(data.get("app_id", "")) is None:
                    return core._response(404, {"error": "unknown app"})
                user.setdefault("app_roles", {})[data["app_id"]] = list(data.get("roles", []))
            world.save()
        return core._response(200, {"ok": True})
    return core._response(404, {"error": f"unknown control action {action}"})


def demo_info(world) -> dict:
    """For emulator.json: the sign-in app and the web identity that redeems its codes."""
    app = next((a for a in world.data["apps"] if a.get("app_roles")), None)
    if app is None:
        return {}
    fic_subjects = {f["subject"] for f in app["fics"]}
    web = next((mi for mi in world.data["managed_identities"] if mi["principal_id"] in fic_subjects), None)
    return {"app_id": app["app_id"], "tenant": app["tenant"], "display_name": app["display_name"],
            "app_roles": app["app_roles"], "web_identity_client_id": web["client_id"] if web else None,
            "users": [{"upn": u["upn"], "roles": u.get("app_roles", {}).get(app["app_id"], []), "mfa": u.get("mfa")}
                      for u in world.data.get("users", []) if u["tenant"] == app["tenant"]]}
