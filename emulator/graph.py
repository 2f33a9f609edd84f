"""Microsoft Graph, the part the portal uses: an application or service principal by appId or object id (a managed
identity's service principal too, by its client id), and the application's federated identity credentials (list,
create, get, update, delete), with Graph's error shape.

Reading needs `Application.Read.All` or a ReadWrite role in the token, writing a ReadWrite role (403
`Authorization_RequestDenied`); FIC names, one audience, issuer+subject unique, at most 20 (ENTRA_FACTS.md).
"""
import json
import re
import time
import uuid
from datetime import UTC, datetime

from emulator.protocol import EXPIRED, NO_HEADER, WRONG_AUDIENCE, Response, read_bearer
from emulator.world import GRAPH_RESOURCES

READ_ROLES = {"Application.Read.All", "Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"}
WRITE_ROLES = {"Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"}
FIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$")
MAX_FICS = 20
OBJECT = re.compile(r"^/v1\.0/(applications|servicePrincipals)(?:\(appId='([^']+)'\)|/([0-9a-fA-F-]{36}))(.*)$")
FICS = re.compile(r"^/federatedIdentityCredentials(?:/(?:\(name='([^']+)'\)|([^/]+)))?$")
TOKEN_PROBLEMS = {NO_HEADER: "Access token is empty.", EXPIRED: "Lifetime validation failed, the token is expired.",
                  WRONG_AUDIENCE: "Invalid audience."}


def error(status: int, code: str, message: str) -> Response:
    return Response(status, {"error": {"code": code, "message": message, "innerError": {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S"), "request-id": str(uuid.uuid4()),
        "client-request-id": str(uuid.uuid4())}}})


def _denied() -> Response:
    return error(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")


def _bad(message: str) -> Response:
    return error(400, "Request_BadRequest", message)


def _fic_json(fic: dict) -> dict:
    return {"id": fic["id"], "name": fic["name"], "issuer": fic["issuer"], "subject": fic["subject"],
            "audiences": fic["audiences"], "description": fic.get("description") or None}


def _app_json(app: dict) -> dict:
    return {"id": app["object_id"], "appId": app["app_id"], "displayName": app["display_name"],
            "signInAudience": app["sign_in_audience"], "web": {"redirectUris": app["redirect_uris"]},
            "identifierUris": app.get("identifier_uris", [])}


def _service_principal_json(app: dict) -> dict:
    return {"id": app["object_id"], "appId": app["app_id"], "displayName": app["display_name"],
            "accountEnabled": not app["disabled"], "servicePrincipalType": "Application"}


def _identity_service_principal_json(mi: dict) -> dict:
    """A managed identity's service principal: its id is the identity's principal (object) id, its appId the
    client id; Entra names the identity's resource id among its alternativeNames."""
    return {"id": mi["principal_id"], "appId": mi["client_id"], "displayName": mi.get("name", ""),
            "accountEnabled": True, "servicePrincipalType": "ManagedIdentity",
            "alternativeNames": [name for name in ("isExplicit=True", mi.get("resource_id")) if name]}


def _invalid_fic(data: dict, existing: dict | None) -> str | None:
    def invalid(field):
        return f"Invalid value specified for property '{field}' of resource 'FederatedIdentityCredential'."

    name = data.get("name", existing["name"] if existing else "")
    if existing is None and not FIC_NAME.match(name or ""):
        return invalid("name")
    audiences = data.get("audiences", existing["audiences"] if existing else None)
    if not isinstance(audiences, list) or len(audiences) != 1:
        return invalid("audiences")
    for field in ("issuer", "subject"):
        value = data.get(field, existing[field] if existing else None)
        if not value or len(value) > 600:
            return invalid(field)
    if len(audiences[0]) > 600 or len(data.get("description") or "") > 600:
        return invalid("audiences")
    return None


def _create_fic(world, app: dict, roles: set, body: bytes) -> Response:
    if not roles & WRITE_ROLES:
        return _denied()
    data = json.loads(body or b"{}")
    fics = app["fics"]
    problem = _invalid_fic(data, None)
    if problem:
        return _bad(problem)
    if any(f["name"] == data["name"] for f in fics):
        return error(409, "Request_MultipleObjectsWithSameKeyValue",
                     f"FederatedIdentityCredential with name {data['name']} already exists.")
    if any(f["issuer"] == data["issuer"] and f["subject"] == data["subject"] for f in fics):
        return _bad("A federated identity credential with this issuer and subject already exists on the application.")
    if len(fics) >= MAX_FICS:
        return _bad(f"The application has reached the maximum number of federated identity credentials ({MAX_FICS}).")
    fic = {"id": str(uuid.uuid4()), "name": data["name"], "issuer": data["issuer"], "subject": data["subject"],
           "audiences": data["audiences"], "description": data.get("description") or ""}
    fics.append(fic)
    world.fic_created_at[fic["id"]] = time.time()
    world.save()
    return Response(201, _fic_json(fic))


def _fic_collection(world, method: str, app: dict, roles: set, body: bytes) -> Response:
    if method == "GET":
        return Response(200, {"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications"
                              f"('{app['object_id']}')/federatedIdentityCredentials",
                              "value": [_fic_json(f) for f in app["fics"]]})
    if method == "POST":
        return _create_fic(world, app, roles, body)
    return error(405, "Request_BadRequest", "Method not allowed.")


def _fic_item(world, method: str, fic: dict, app: dict, roles: set, body: bytes) -> Response:
    if method == "GET":
        return Response(200, _fic_json(fic))
    if not roles & WRITE_ROLES:
        return _denied()
    if method == "DELETE":
        app["fics"].remove(fic)
        world.save()
        return Response(204, b"")
    if method != "PATCH":
        return error(405, "Request_BadRequest", "Method not allowed.")
    data = json.loads(body or b"{}")
    if "name" in data and data["name"] != fic["name"]:
        return _bad("Property 'name' is read-only and cannot be changed.")
    problem = _invalid_fic(data, fic)
    if problem:
        return _bad(problem)
    fic.update({k: data[k] for k in ("issuer", "subject", "audiences", "description") if k in data})
    world.save()
    return Response(204, b"")


def _application_part(world, method: str, app: dict, rest: str, roles: set, body: bytes) -> Response:
    if not rest:
        return Response(200, _app_json(app))
    match = FICS.match(rest)
    if not match:
        return error(400, "BadRequest", f"Resource not found for the segment '{rest}'.")
    by_name, by_id = match.groups()
    if not by_name and not by_id:
        return _fic_collection(world, method, app, roles, body)
    fic = next((f for f in app["fics"] if (by_name and f["name"] == by_name) or (by_id and f["id"] == by_id)), None)
    if fic is None:
        return error(404, "Request_ResourceNotFound", f"Resource '{by_name or by_id}' does not exist.")
    return _fic_item(world, method, fic, app, roles, body)


def handle(emu, method: str, path: str, body: bytes, headers) -> Response:
    claims, reason = read_bearer(emu, headers, GRAPH_RESOURCES)
    if reason:
        return error(401, "InvalidAuthenticationToken", TOKEN_PROBLEMS.get(reason, "Access token validation failure."))
    match = OBJECT.match(path)
    if not match:
        return error(400, "BadRequest", f"Resource not found for the segment '{path}'.")
    collection, app_id, object_id, rest = match.groups()
    world = emu.world
    with world.lock:
        mi = world.identity(client_id=app_id) if collection == "servicePrincipals" and app_id else None
        if mi is not None and mi["tenant"] == claims["tid"]:
            if not set(claims.get("roles", [])) & READ_ROLES:
                return _denied()
            return Response(200, _identity_service_principal_json(mi))
        app = world.app(app_id) if app_id else world.app_by_object_id(object_id)
        if app is None or app["tenant"] != claims["tid"]:
            return error(404, "Request_ResourceNotFound", f"Resource '{app_id or object_id}' does not exist or one "
                         "of its queried reference-property objects are not present.")
        roles = set(claims.get("roles", []))
        if not roles & READ_ROLES:
            return _denied()
        if collection == "servicePrincipals":
            return Response(200, _service_principal_json(app))
        return _application_part(world, method, app, rest, roles, body)
