"""Azure RBAC (Microsoft.Authorization) under any ARM scope: role assignments, role definitions and the caller's
permissions, with ARM's documented shapes and refusals. `arm.py` authenticates the caller and hands requests here.

- `GET {scope}/providers/Microsoft.Authorization/roleAssignments?$filter=atScope() and assignedTo('{id}')`: the
  assignments at or above `scope` (inherited ones too) of that principal; `$filter` may also be `atScope()`,
  `principalId eq '{id}'` or `assignedTo('{id}')`, anything else is 400 `UnsupportedQuery`. The caller needs
  `Microsoft.Authorization/roleAssignments/read` on the scope (Reader has it through `*/read`), else 403
  `AuthorizationFailed`.
- `GET {scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}` (404 `RoleDefinitionDoesNotExist`) and
  `GET {scope}/providers/Microsoft.Authorization/roleDefinitions?$filter=roleName eq '{name}'`: built-in roles, readable
  by any caller of the tenant.
- `GET {scope}/providers/Microsoft.Authorization/permissions`: the caller's own actions on the scope, one entry per
  role it holds there (inherited too); never refused.
"""
import re
import uuid

PROVIDER = "/providers/microsoft.authorization/"
API_VERSIONS = ("2015-07-01", "2018-01-01-preview", "2018-07-01", "2020-04-01-preview", "2020-10-01-preview",
                "2021-04-01-preview", "2022-04-01", "2022-05-01-preview")
# Built-in roles (their ids are the same in every tenant). A world may add its own under "role_definitions".
BUILT_IN_ROLES = [
    {"name": "Owner", "id": "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "actions": ["*"]},
    {"name": "Contributor", "id": "b24988ac-6180-42a0-ab88-20f7382dd24c", "actions": ["*"],
     "not_actions": ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                     "Microsoft.Authorization/elevateAccess/Action"]},
    {"name": "Reader", "id": "acdd72a7-3385-48ef-bd42-f606fba81ae7", "actions": ["*/read"]},
    {"name": "Monitoring Reader", "id": "43d0d8ad-25c7-4714-9337-8ba259a9fe05",
     "actions": ["*/read", "Microsoft.OperationalInsights/workspaces/search/action", "Microsoft.Support/*"]},
    {"name": "Monitoring Metrics Publisher", "id": "3913510d-42f4-4e42-8a64-420c390055eb",
     "actions": ["Microsoft.Insights/Register/Action", "Microsoft.Support/*",
                 "Microsoft.Resources/subscriptions/resourceGroups/read"],
     "data_actions": ["Microsoft.Insights/Metrics/Write", "Microsoft.Insights/Telemetry/Write"]},
]
FILTER = re.compile(r"^\s*(?:(atScope\(\))|assignedTo\('([^']+)'\)|principalId eq '([^']+)')"
                    r"(?:\s+and\s+(?:(atScope\(\))|assignedTo\('([^']+)'\)|principalId eq '([^']+)'))?\s*$")
ROLE_NAME = re.compile(r"^\s*roleName eq '([^']+)'\s*$")
READ_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments/read"


def split(path: str) -> tuple[str, str, str] | None:
    """(scope, collection, rest) of a Microsoft.Authorization path, or None for any other path."""
    at = path.lower().find(PROVIDER)
    if at < 0:
        return None
    collection, _, rest = path[at + len(PROVIDER):].partition("/")
    return path[:at] or "/", collection.lower(), rest


def definitions(world) -> list[dict]:
    return BUILT_IN_ROLES + world.data.get("role_definitions", [])


def definition(world, *, name: str = "", guid: str = "") -> dict | None:
    return next((d for d in definitions(world) if (name and d["name"].lower() == name.lower())
                 or (guid and d["id"] == guid.lower())), None)


def _covers(patterns: list[str], action: str) -> bool:
    """Does one of ARM's action patterns (`*`, `*/read`, `Microsoft.Insights/*`) match `action`? Case-insensitive."""
    action = action.lower()
    for pattern in (p.lower() for p in patterns):
        regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
        if re.match(regex, action):
            return True
    return False


def inherited(scope: str, assigned: str) -> bool:
    """An assignment at `assigned` applies at `scope`: the same scope, or a parent of it (the root `/` too)."""
    scope, assigned = scope.lower().rstrip("/"), assigned.lower().rstrip("/")
    return assigned == "" or scope == assigned or scope.startswith(assigned + "/")


def assignments(world, tenant_id: str, scope: str, principal: str | None = None) -> list[dict]:
    return [r for r in world.data["role_assignments"] if r["tenant"] == tenant_id and inherited(scope, r["scope"])
            and (principal is None or r["principal"].lower() == principal.lower())]


def permissions(world, tenant_id: str, principal: str, scope: str) -> list[dict]:
    """The caller's permissions at `scope`: one entry per role it holds there, as ARM lists them."""
    found = []
    for held in assignments(world, tenant_id, scope, principal):
        role = definition(world, name=held["role"]) or {"actions": []}
        found.append({"actions": role["actions"], "notActions": role.get("not_actions", []),
                      "dataActions": role.get("data_actions", []), "notDataActions": []})
    return found


def allowed(world, tenant_id: str, principal: str, scope: str, action: str) -> bool:
    return any(_covers(p["actions"], action) and not _covers(p["notActions"], action)
               for p in permissions(world, tenant_id, principal, scope))


def assignment_body(world, held: dict) -> dict:
    role = definition(world, name=held["role"]) or {"id": "00000000-0000-0000-0000-000000000000"}
    name = held.get("id") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{held['scope']}|{held['principal']}|{role['id']}"))
    subscription = re.match(r"^(/subscriptions/[^/]+)", held["scope"], re.IGNORECASE)
    prefix = subscription.group(1) if subscription else ""
    return {"properties": {"roleDefinitionId": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{role['id']}",
                           "principalId": held["principal"], "principalType": "ServicePrincipal",
                           "scope": held["scope"], "condition": None, "conditionVersion": None,
                           "createdOn": "2026-01-05T09:00:00.0000000Z", "updatedOn": "2026-01-05T09:00:00.0000000Z",
                           "createdBy": None, "updatedBy": None, "delegatedManagedIdentityResourceId": None,
                           "description": None},
            "id": f"{held['scope'].rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{name}",
            "type": "Microsoft.Authorization/roleAssignments", "name": name}


def definition_body(role: dict, scope: str) -> dict:
    prefix = "" if scope == "/" else scope.rstrip("/")
    return {"properties": {"roleName": role["name"], "type": "BuiltInRole", "description": "", "assignableScopes": ["/"],
                           "permissions": [{"actions": role["actions"], "notActions": role.get("not_actions", []),
                                            "dataActions": role.get("data_actions", []), "notDataActions": []}]},
            "id": f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{role['id']}",
            "type": "Microsoft.Authorization/roleDefinitions", "name": role["id"]}


def parse_filter(text: str) -> tuple[bool, str | None] | None:
    """(at scope only, the principal or None) of a role-assignment `$filter`; None if ARM does not support it."""
    if not text:
        return False, None
    match = FILTER.match(text)
    if not match:
        return None
    groups = match.groups()
    principals = [g for g in (groups[1], groups[2], groups[4], groups[5]) if g]
    if len(principals) > 1:
        return None
    return bool(groups[0] or groups[3]), principals[0] if principals else None
