"""Admin consent: `GET /{tenant}/adminconsent` (v1) and `/{tenant}/v2.0/adminconsent` (v2), the page an administrator
accepts or cancels, and its decision (`POST /{tenant}/adminconsent/decision`) redirecting as Entra does.

Refusals Entra shows on its own page, never redirecting: unknown client (700016), unregistered redirect URI (50011),
v2 without `scope` (90014) or on `common` (90130), unknown tenant (90002).
"""
import html
import uuid

from emulator.protocol import SORRY, html_page, parse_form, redirect

PAGE_STYLE = "body{font-family:sans-serif;max-width:36rem;margin:3rem auto}button{padding:.5rem 1.5rem;margin-right:1rem}"
ANY_TENANT = ("common", "organizations")


def _error_page(code: int, text: str, status=400):
    return html_page("Sign in", f"<h1>{html.escape(SORRY)}</h1><p id='error'>AADSTS{code}: {html.escape(text)}</p>",
                     status)


def _request_problem(world, tenant_name: str, query: dict, v2: bool):
    """(app, None) or (None, the error page)."""
    app = world.app(query.get("client_id", ""))
    if app is None:
        return None, _error_page(700016, f"Application with identifier '{query.get('client_id', '')}' was not found.")
    redirect_uri = query.get("redirect_uri", "")
    if redirect_uri not in app["redirect_uris"]:
        return None, _error_page(50011, f"The redirect URI '{redirect_uri}' specified in the request does not match "
                                 f"the redirect URIs configured for the application '{app['app_id']}'.")
    if v2 and not query.get("scope"):
        return None, _error_page(90014, "The required field 'scope' is missing from the credential.")
    if v2 and tenant_name == "common":
        return None, _error_page(90130, "Application does not support 'common' on the v2.0 admin consent endpoint.")
    if tenant_name not in ANY_TENANT and world.tenant(tenant_name) is None:
        return None, _error_page(90002, f"Tenant '{tenant_name}' not found.")
    return app, None


def page(emu, tenant_name: str, query: dict, v2: bool):
    world = emu.world
    app, problem = _request_problem(world, tenant_name, query, v2)
    if problem:
        return problem
    fixed = world.tenant(tenant_name) if tenant_name not in ANY_TENANT else None
    options = [fixed] if fixed else [t for t in world.data["tenants"] if t["id"] != app["tenant"]]
    choose = "".join(f"<option value='{t['id']}'>{html.escape(t['display_name'])} "
                     f"({html.escape(t['domains'][0] if t['domains'] else t['id'])})</option>" for t in options)
    hidden = "".join(f"<input type='hidden' name='{k}' value='{html.escape(query.get(k, ''), quote=True)}'>"
                     for k in ("client_id", "redirect_uri", "state", "scope"))
    permissions = html.escape(query.get("scope", "")) or "the permissions the application requests"
    body = f"""<h1>Permissions requested</h1><h2 id="app-name">{html.escape(app['display_name'])}</h2>
<p>This application is not published by Microsoft. Accept for your organization to let it: {permissions}.</p>
<form method="post" action="{emu.base_url}/{html.escape(tenant_name)}/adminconsent/decision">
{hidden}<input type='hidden' name='version' value='{"v2" if v2 else "v1"}'>
<label>Signed in as an administrator of <select name="signin_tenant">{choose}</select></label>
<p><button type="submit" name="action" value="accept" id="accept">Accept</button>
<button type="submit" name="action" value="cancel" id="cancel">Cancel</button></p></form>"""
    return html_page("Permissions requested", body, style=PAGE_STYLE)


def decision(emu, tenant_name: str, body: bytes):
    form = parse_form(body, keep_blank=True)
    world = emu.world
    app = world.app(form.get("client_id", ""))
    redirect_uri, state = form.get("redirect_uri", ""), form.get("state", "")
    if app is None or redirect_uri not in app["redirect_uris"]:
        return _error_page(50011, "The redirect URI specified in the request does not match.")
    signin = world.tenant(form.get("signin_tenant", "")) or world.tenant(tenant_name)
    if form.get("action") != "accept":
        return redirect(redirect_uri, {"error": "access_denied", "error_description": "AADSTS65004: User declined to "
                                       f"consent to access the app. Trace ID: {uuid.uuid4()}", "state": state})
    if signin is None:
        return redirect(redirect_uri, {"error": "invalid_request", "error_description": "AADSTS90002: Tenant not "
                                       "found.", "state": state})
    with world.lock:
        if world.service_principal(signin["id"], app["app_id"]) is None:
            principal = str(uuid.uuid4())
            world.data["service_principals"].append(
                {"tenant": signin["id"], "app_id": app["app_id"], "object_id": principal})
            world.data["role_assignments"] += [
                {"tenant": signin["id"], "principal": principal, "role": grant["role"], "scope": grant["scope"]}
                for grant in world.data.get("consent_grants", [])
                if grant["tenant"] == signin["id"] and grant["app_id"].lower() == app["app_id"].lower()]
            world.save()
    params = {"admin_consent": "True", "tenant": signin["id"], "state": state}
    if form.get("version") == "v2":
        params["scope"] = form.get("scope", "")
    return redirect(redirect_uri, params)
