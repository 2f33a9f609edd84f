"""The control endpoints under `/_emulator/` (the server side; `emulator/control.py` is the client tests use): the
request log, faults, clock skew, FIC propagation, consent/roles/app changes, external issuers' tokens, and the staff
sign-in and workload families (`signin.py`, `workload.py`). Listed in emulator/README.md.
"""
import json

from emulator import signin, workload
from emulator.protocol import Response

OK = {"ok": True}


def _no_consent() -> Response:
    return Response(409, {"error": "no consent in that tenant"})


def _service_principal_flag(world, action: str, tenant: dict, app: dict, data: dict):
    sp = next((sp for sp in world.data["service_principals"] if sp["tenant"] == tenant["id"]
               and sp["app_id"] == app["app_id"]), None)
    if sp is None:
        return _no_consent()
    sp["disabled" if action == "service-principals/disable" else "blocked_by_conditional_access"] = bool(
        data.get("on", True))
    return None


def _revoke_consent(world, action: str, tenant: dict, app: dict, data: dict):
    world.data["service_principals"] = [sp for sp in world.data["service_principals"] if not (
        sp["tenant"] == tenant["id"] and sp["app_id"] == app["app_id"])]


def _role_scopes(world, tenant: dict, data: dict) -> list[str] | Response:
    """Where `roles/add` assigns: `scope` (any ARM scope), or `subscription_id`, or else every subscription of the
    tenant (400 when it has none)."""
    if data.get("scope"):
        scope = str(data["scope"])
        if not scope.startswith("/"):
            return Response(400, {"error": "scope must be an ARM resource id such as /subscriptions/<id>"})
        return [scope.rstrip("/") or "/"]
    if data.get("subscription_id"):
        return [f"/subscriptions/{data['subscription_id']}"]
    scopes = [f"/subscriptions/{s['subscription_id']}" for s in world.data["subscriptions"]
              if s["tenant"] == tenant["id"]]
    return scopes or Response(400, {"error": "that tenant has no subscription: give a scope"})


def _change_roles(world, action: str, tenant: dict, app: dict, data: dict):
    sp = world.service_principal(tenant["id"], app["app_id"])
    if sp is None:
        return _no_consent()
    assigned = world.data["role_assignments"]
    if action == "roles/remove":  # every role of the app in the tenant, or only `role` (and `scope`) if given
        world.data["role_assignments"] = [r for r in assigned if not (
            r["tenant"] == tenant["id"] and r["principal"] == sp["object_id"]
            and data.get("role", r["role"]) == r["role"] and data.get("scope", r["scope"]) == r["scope"])]
        return None
    scopes = _role_scopes(world, tenant, data)
    if isinstance(scopes, Response):
        return scopes
    role = data.get("role", "Reader")
    for scope in scopes:
        wanted = {"tenant": tenant["id"], "principal": sp["object_id"], "role": role, "scope": scope}
        if wanted not in assigned:
            assigned.append(wanted)
    return None


def _disable_app(world, action: str, tenant: dict | None, app: dict, data: dict):
    app["disabled"] = bool(data.get("disabled", True))


def _add_redirect_uris(world, action: str, tenant: dict | None, app: dict, data: dict):
    app["redirect_uris"] = sorted(set(app["redirect_uris"]) | set(data.get("add", [])))


# action → (change, whether it needs a tenant); a change answers an error Response or None (done, saved).
WORLD_CHANGES = {
    "service-principals/disable": (_service_principal_flag, True),
    "conditional-access/block": (_service_principal_flag, True),
    "consent/revoke": (_revoke_consent, True),
    "roles/remove": (_change_roles, True),
    "roles/add": (_change_roles, True),
    "apps/disable": (_disable_app, False),
    "apps/redirect-uris": (_add_redirect_uris, False),
}


def _change_world(emu, action: str, data: dict) -> Response:
    change, needs_tenant = WORLD_CHANGES[action]
    world = emu.world
    with world.lock:
        app = world.app(data.get("app_id", ""))
        tenant = world.tenant(data.get("tenant", "")) if data.get("tenant") else None
        if app is None or (needs_tenant and tenant is None):
            return Response(404, {"error": "unknown app or tenant"})
        refused = change(world, action, tenant, app, data)
        if refused is not None:
            return refused
        world.save()
    return Response(200, OK)


def _emulator_setting(emu, action: str, data: dict) -> Response:
    if action == "requests/reset":
        emu.log.reset()
    elif action == "reset":
        emu.reset()
    elif action == "faults":
        emu.faults.configure(data)
    elif action == "clock":
        emu.skew_seconds = float(data.get("skew_seconds", 0))
    else:  # fic-propagation
        emu.fic_propagation_seconds = float(data.get("seconds", 0))
    return Response(200, OK)


SETTINGS = ("requests/reset", "reset", "faults", "clock", "fic-propagation")


def handle(emu, method: str, path: str, body: bytes) -> Response:
    action = path[len("/_emulator/"):].strip("/")
    data = json.loads(body or b"{}") if method == "POST" else {}
    if action == "requests" and method == "GET":
        return Response(200, emu.log.snapshot())
    if action in SETTINGS:
        return _emulator_setting(emu, action, data)
    if action in WORLD_CHANGES:
        return _change_world(emu, action, data)
    if action.startswith("signin/"):
        return signin.control(emu, action, data)
    if action.startswith("workload/"):  # the automation API's workload tokens
        return workload.control(emu, action, data)
    parts = action.split("/")
    if len(parts) == 3 and parts[0] == "issuers" and parts[2] == "token":
        return workload.issuer_token(emu, parts[1], data, github=False)
    return Response(404, {"error": f"unknown control action {action}"})
