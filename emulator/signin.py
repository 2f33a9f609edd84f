"""Staff sign-in (OpenID Connect, authorization code flow with PKCE): `/authorize` with a sign-in page listing the
world's users, code redemption at the token endpoint (`signin_code.py`: ID tokens with Entra's v2 claims), the
sign-in control endpoints, and errors as Entra gives them.

Codes live in memory (single-use, 10 minutes). A control endpoint can spoil the next ID token (another tenant, audience,
expiry, signing key, no nonce) so that the relying party's validation can be tested against a real token endpoint.
"""
import html
import secrets
import time
import uuid

from emulator.protocol import SORRY, Response, html_page, parse_form, redirect
from emulator.signin_code import state_of, token_by_code

PAGE_STYLE = ("body{font-family:sans-serif;max-width:40rem;margin:3rem auto}li{margin:.5rem 0}"
              "button{padding:.4rem 1rem;min-width:22rem;text-align:left}small{color:#555}")


def _page(title: str, body: str, status=200):
    return html_page(title, body, status, style=PAGE_STYLE)


def _error_page(code: int, text: str, status=400):
    return _page("Sign in to your account", f"<h1>{html.escape(SORRY)}</h1><p id='error'>AADSTS{code}: "
                 f"{html.escape(text)}</p>", status)


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
        return redirect(redirect_uri, {"error": "unsupported_response_type", "error_description":
                                        "AADSTS700054: response_type 'id_token' is not enabled for the application.",
                                        "state": state})
    if "openid" not in query.get("scope", "").split():
        return redirect(redirect_uri, {"error": "invalid_request", "error_description": "AADSTS900144: The request "
                                        "body must contain the following parameter: 'scope' with 'openid'.",
                                        "state": state})
    if query.get("code_challenge") and query.get("code_challenge_method", "plain") not in ("S256", "plain"):
        return redirect(redirect_uri, {"error": "invalid_request", "error_description": "AADSTS501491: Invalid "
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
    form = parse_form(body, keep_blank=True)
    tenant, app, error = _check_request(emu, tenant_name, form)
    if error:
        return error
    redirect_uri, state = form["redirect_uri"], form.get("state", "")
    user = next((u for u in _users_of(emu.world, tenant["id"]) if u["oid"] == form.get("user")), None)
    if not form.get("user"):
        return redirect(redirect_uri, {"error": "access_denied", "error_description": "AADSTS50126: The user "
                                        "cancelled the sign-in.", "state": state})
    if user is None:
        return redirect(redirect_uri, {"error": "invalid_request", "error_description": "AADSTS50020: User account "
                                        "from identity provider does not exist in tenant "
                                        f"'{tenant['display_name']}'.", "state": state})
    code = secrets.token_urlsafe(48)
    with state_of(emu).lock:
        state_of(emu).codes[code] = {
            "client_id": app["app_id"], "tenant": tenant["id"], "redirect_uri": redirect_uri, "user": user["oid"],
            "nonce": form.get("nonce", ""), "scope": form.get("scope", ""), "issued": time.time(), "used": False,
            "challenge": form.get("code_challenge", ""), "method": form.get("code_challenge_method") or "plain"}
    return redirect(redirect_uri, {"code": code, "state": state, "session_state": str(uuid.uuid4())})


def route(emu, method: str, tenant_name: str, rest: str, query: dict, body: bytes):
    """The sign-in endpoints under /{tenant}/..., or None for another handler."""
    if rest in ("oauth2/v2.0/authorize",) and method == "GET":
        return authorize(emu, tenant_name, query)
    if rest == "oauth2/v2.0/authorize/decision" and method == "POST":
        return decision(emu, tenant_name, body)
    # The token endpoint's hot path (client credentials, thousands a sweep) is only looked at, not parsed, here.
    if rest == "oauth2/v2.0/token" and method == "POST" and b"grant_type=authorization_code" in body:
        form = parse_form(body)
        if form.get("grant_type") == "authorization_code":
            return token_by_code(emu, tenant_name, form)
    return None


def control(emu, action: str, data: dict):
    """/_emulator/signin/...: app-role assignments, MFA, and the spoiler of the next ID token."""
    world = emu.world
    if action == "signin/id-token":
        with state_of(emu).lock:
            state_of(emu).spoil = {k: data[k] for k in ("set", "drop", "exp_offset", "sign_with") if k in data}
        return Response(200, {"ok": True})
    if action in ("signin/app-roles", "signin/mfa"):
        with world.lock:
            name = str(data.get("user", "")).lower()
            user = next((u for u in world.data.get("users", []) if name in (u["oid"].lower(), u["upn"].lower())),
                        None)
            if user is None:
                return Response(404, {"error": "unknown user"})
            if action == "signin/mfa":
                user["mfa"] = bool(data.get("on", True))
            else:
                if world.app(data.get("app_id", "")) is None:
                    return Response(404, {"error": "unknown app"})
                user.setdefault("app_roles", {})[data["app_id"]] = list(data.get("roles", []))
            world.save()
        return Response(200, {"ok": True})
    return Response(404, {"error": f"unknown control action {action}"})


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
