"""The token endpoint's client-credentials grant (`POST /{tenant}/oauth2/v2.0/token`, and v1 `/oauth2/token`).

Checked in Entra's order, each refusal with its documented AADSTS code: the tenant in the path (900023 malformed,
90002 unknown), the request's parameters (900144 missing, 70003 unsupported grant, 1002012 a scope without
`/.default`, 70011 an invalid scope), the client's credential (7000216 none, then `assertions.py`), its consent and
state in the tenant (700016, 500014, 53003) and the resource (500011).
"""
import re
import uuid

from emulator.assertions import authenticate_client, has_assertion
from emulator.protocol import GUID, Response, app_not_found, entra_error, issuer_for, sign, tenant_not_found
from emulator.world import ARM_RESOURCES, GRAPH_RESOURCES

DNS_NAME = re.compile(r"^(?=.{1,253}$)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z][A-Za-z0-9-]{0,62}$")
DEFAULT = "/.default"
MULTI_TENANT = ("common", "organizations", "consumers")


def _missing(name: str) -> Response:
    return entra_error(400, "invalid_request", 900144, f"The request body must contain the following parameter: "
                       f"'{name}'.")


def find_tenant(world, name: str):
    """(tenant, None) or (None, the refusal): a GUID or a DNS name, known to the world."""
    # `common`, `organizations`, `consumers` are well-formed (no tenant to issue an app token for: 90002 below).
    if not GUID.match(name) and not DNS_NAME.match(name) and name not in MULTI_TENANT:
        return None, entra_error(400, "invalid_request", 900023, f"Specified tenant identifier '{name}' is neither a "
                                 "valid DNS name, nor a valid external domain.")
    tenant = world.tenant(name)
    return (tenant, None) if tenant else (None, tenant_not_found(name))


def _resource(form: dict, v1: bool):
    """(resource, None) or (None, the refusal): v2 asks for one `{resource}/.default` scope; v1 names `resource`."""
    if v1 and form.get("resource"):
        return form["resource"], None
    scope = form.get("scope", "")
    scopes = scope.split()
    if not scopes:
        return None, _missing("resource" if v1 else "scope")
    wrong = next((s for s in scopes if not s.endswith(DEFAULT)), None)
    if wrong is not None:
        return None, entra_error(400, "invalid_scope", 1002012, f"The provided value for scope {wrong} is not valid. "
                                 "Client credential flows must have a scope value with /.default suffixed to the "
                                 "resource identifier (application ID URI).")
    if len(scopes) > 1 or scopes[0] == DEFAULT:
        return None, entra_error(400, "invalid_scope", 70011, "The provided request must include a 'scope' input "
                                 "parameter. The provided value for the input parameter 'scope' is not valid. The "
                                 f"scope {scope} is not valid." + (" static scope limit exceeded."
                                                                   if len(scopes) > 1 else ""))
    return scopes[0][: -len(DEFAULT)], None


def _request_problem(form: dict, v1: bool):
    """(resource, None) or (None, the refusal) for the parameters alone, before anything is looked up."""
    grant = form.get("grant_type")
    if not grant:
        return None, _missing("grant_type")
    if grant != "client_credentials":
        return None, entra_error(400, "unsupported_grant_type", 70003, f"The app requested an unsupported grant type "
                                 f"'{grant}'.")
    if not form.get("client_id"):
        return None, _missing("client_id")
    return _resource(form, v1)


def _consent_problem(tenant: dict, app: dict, sp: dict | None):
    if sp is None:
        return app_not_found(app["app_id"], tenant)
    if sp.get("disabled"):
        return entra_error(400, "unauthorized_client", 500014, f"The service principal for resource "
                           f"'{app['app_id']}' is disabled in tenant '{tenant['display_name']}'.")
    if sp.get("blocked_by_conditional_access"):
        return entra_error(400, "invalid_grant", 53003, "Access has been blocked by Conditional Access policies. "
                           "The access policy does not allow token issuance.")
    return None


def _issue(emu, tenant: dict, app: dict, sp: dict, resource: str, roles: list) -> Response:
    now = int(emu.now())
    claims = {"aud": resource, "iss": issuer_for(tenant), "iat": now, "nbf": now, "exp": now + 3599,
              "aio": uuid.uuid4().hex, "app_displayname": app["display_name"], "appid": app["app_id"],
              "azp": app["app_id"], "appidacr": "2", "idp": issuer_for(tenant), "idtyp": "app",
              "oid": sp["object_id"], "sub": sp["object_id"], "tid": tenant["id"], "ver": "2.0",
              "uti": uuid.uuid4().hex[:22]}
    if roles:
        claims["roles"] = roles
    return Response(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                          "access_token": sign(emu, claims)})


def client_credentials(emu, tenant_name: str, form: dict, v1: bool = False) -> Response:
    world = emu.world
    with world.lock:
        tenant, refusal = find_tenant(world, tenant_name)
        if refusal is None:
            resource, refusal = _request_problem(form, v1)
        if refusal is not None:
            return refusal
        app = world.app(form["client_id"])
        if app is None:
            return app_not_found(form["client_id"], tenant)
        if not has_assertion(form):
            return entra_error(401, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is "
                               "required for the 'client_credentials' grant type.")
        sp = world.service_principal(tenant["id"], app["app_id"])
        refusal = authenticate_client(emu, tenant, app, form) or _consent_problem(tenant, app, sp)
        if refusal is not None:
            return refusal
        if resource in GRAPH_RESOURCES:
            roles = world.data["graph_permissions"].get(app["app_id"], []) if sp.get("home") else []
        elif resource in ARM_RESOURCES:
            roles = []
        else:
            return entra_error(400, "invalid_resource", 500011, f"The resource principal named {resource} was not "
                               f"found in the tenant named {tenant['display_name']}.")
    return _issue(emu, tenant, app, sp, resource, roles)
