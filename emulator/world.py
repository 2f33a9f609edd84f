"""Worlds: the tenants, apps, identities, consents, subscriptions and roles the emulator serves, and their state.

A world is a plain dict (JSON or TOML file, see README.md). Changes made through the protocol (consent, FIC
writes) or the control endpoints are saved to `<state-dir>/state.json` and survive a restart with the same world.
"""
import copy
import hashlib
import json
import threading
import tomllib
import uuid
from pathlib import Path

CLOUD_LOGIN_HOSTS = {"global": "login.microsoftonline.com", "usgov": "login.microsoftonline.us",
                     "china": "login.chinacloudapi.cn"}
EXCHANGE_AUDIENCES = {"global": "api://AzureADTokenExchange", "usgov": "api://AzureADTokenExchangeUSGov",
                      "china": "api://AzureADTokenExchangeChina"}
TOKEN_EXCHANGE_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"
ARM_RESOURCES = {"https://management.azure.com": "global", "https://management.usgovcloudapi.net": "usgov",
                 "https://management.chinacloudapi.cn": "china", "https://management.core.windows.net": "global"}
GRAPH_RESOURCES = {"https://graph.microsoft.com": "global", "https://graph.microsoft.us": "usgov",
                   "https://microsoftgraph.chinacloudapi.cn": "china"}

HOME = "6d1f3a52-3c1e-4f0a-9b7e-5a2c1d0e9f01"
APP_ID = "3f6b2c8e-1a4d-4e7b-9c2f-8d5e0a1b7c36"
APP_OBJECT_ID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
MI_CLIENT_ID = "5c4e8a1f-2b3d-4c6e-8f0a-1b2c3d4e5f60"
MI_PRINCIPAL_ID = "7e6d5c4b-3a29-4817-a6f5-e4d3c2b1a098"
FABRIKAM, NORTHWIND, TAILSPIN, WOODGROVE, USGOV = (
    "c1a2b3c4-d5e6-4f70-8a9b-0c1d2e3f4a51", "c2b3c4d5-e6f7-4a81-9b0c-1d2e3f4a5b62",
    "c3c4d5e6-f7a8-4b92-8c1d-2e3f4a5b6c73", "c4d5e6f7-a8b9-4ca3-9d2e-3f4a5b6c7d84",
    "c5e6f7a8-b9c0-4db4-8e3f-4a5b6c7d8e95")
NORTHWIND_SUBSCRIPTION = "e1000000-0000-4000-8000-000000000002"
# Customers the demo leaves in one state each (console's demo command): declined, invited, draft, offboarded.
DEMO_STATE_TENANTS = [
    ("c6f7a8b9-c0d1-4ec5-9f4a-5b6c7d8e9fa6", "adatum.example", "Adatum Corporation"),
    ("c7a8b9c0-d1e2-4fd6-8a5b-6c7d8e9fab07", "litware.example", "Litware Inc."),
    ("c8b9c0d1-e2f3-4ae7-9b6c-7d8e9fab0c18", "proseware.example", "Proseware"),
    ("c9c0d1e2-f3a4-4bf8-8c7d-8e9fab0c1d29", "wingtip.example", "Wingtip Toys"),
]


def demo_world() -> dict:
    """The built-in world: the MSSP's home tenant with a correct FIC, and customer tenants in every state."""
    mi_resource = ("/subscriptions/00000000-0000-4000-8000-0000000000aa/resourceGroups/mssp-workers/providers/"
                   "Microsoft.ManagedIdentity/userAssignedIdentities/keyless-worker")
    world = {
        "tenants": [
            {"id": HOME, "domains": ["contoso-mssp.example"], "display_name": "Contoso MSSP", "cloud": "global",
             "region": "EU"},
            {"id": FABRIKAM, "domains": ["fabrikam.example"], "display_name": "Fabrikam", "cloud": "global",
             "region": "NA"},
            {"id": NORTHWIND, "domains": ["northwind.example"], "display_name": "Northwind Traders",
             "cloud": "global", "region": "EU"},
            {"id": TAILSPIN, "domains": ["tailspin.example"], "display_name": "Tailspin Toys", "cloud": "global",
             "region": "NA"},
            {"id": WOODGROVE, "domains": ["woodgrove.example"], "display_name": "Woodgrove Bank", "cloud": "global",
             "region": "EU"},
            {"id": USGOV, "domains": ["agency.example"], "display_name": "Agency (US Gov)", "cloud": "usgov",
             "region": "USG"},
            *({"id": tid, "domains": [domain], "display_name": name, "cloud": "global", "region": "EU"}
              for tid, domain, name in DEMO_STATE_TENANTS),
        ],
        "apps": [{
            "app_id": APP_ID, "object_id": APP_OBJECT_ID, "tenant": HOME, "display_name": "Contoso MSSP Keyless Access",
            "sign_in_audience": "AzureADMultipleOrgs", "disabled": False,
            "redirect_uris": ["http://127.0.0.1:8000/consent/callback/", "http://localhost:8000/consent/callback/"],
            "fics": [{"id": "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "name": "keyless-worker",
                      "issuer": f"https://login.microsoftonline.com/{HOME}/v2.0", "subject": MI_PRINCIPAL_ID,
                      "audiences": ["api://AzureADTokenExchange"],
                      "description": "Workers' user-assigned identity"}],
        }],
        "managed_identities": [{"client_id": MI_CLIENT_ID, "principal_id": MI_PRINCIPAL_ID, "tenant": HOME,
                                "resource_id": mi_resource, "name": "keyless-worker"}],
        "service_principals": [
            {"tenant": FABRIKAM, "app_id": APP_ID, "object_id": "d1000000-0000-4000-8000-000000000001"},
            {"tenant": TAILSPIN, "app_id": APP_ID, "object_id": "d1000000-0000-4000-8000-000000000003"},
        ],
        "subscriptions": [
            {"tenant": FABRIKAM, "subscription_id": "e1000000-0000-4000-8000-000000000001",
             "display_name": "Fabrikam Production"},
            {"tenant": TAILSPIN, "subscription_id": "e1000000-0000-4000-8000-000000000003",
             "display_name": "Tailspin Dev"},
            {"tenant": NORTHWIND, "subscription_id": NORTHWIND_SUBSCRIPTION, "display_name": "Northwind Production"},
        ],
        "role_assignments": [
            {"tenant": FABRIKAM, "principal": "d1000000-0000-4000-8000-000000000001",
             "scope": "/subscriptions/e1000000-0000-4000-8000-000000000001", "role": "Reader"},
        ],
        # Northwind's admin assigns the agreed role as part of consenting (consent.py applies these grants when it
        # creates the service principal), so the demo's walk-through ends on "Access verified".
        "consent_grants": [{"tenant": NORTHWIND, "app_id": APP_ID, "role": "Reader",
                            "scope": f"/subscriptions/{NORTHWIND_SUBSCRIPTION}"}],
        "graph_permissions": {APP_ID: ["Application.ReadWrite.OwnedBy"]},
        "oidc_issuers": [{"name": "github", "issuer": "https://token.actions.githubusercontent.com"}],
    }
    _demo_staff_sign_in(world)
    return world


# --- staff sign-in (OIDC): the portal's sign-in app, the web's identity and the MSSP's staff users ---------------
SIGNIN_APP_ID = "8b1c7d2e-4f3a-4b6c-9d8e-0a1b2c3d4e5f"
SIGNIN_APP_OBJECT_ID = "a7b6c5d4-e3f2-4a1b-8c9d-0e1f2a3b4c5d"
WEB_MI_CLIENT_ID = "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"
WEB_MI_PRINCIPAL_ID = "1f2e3d4c-5b6a-4978-8877-665544332211"
SIGNIN_APP_ROLES = ("Portal.Viewer", "Portal.Operator", "Portal.Admin", "Portal.Auditor")


def _demo_staff_sign_in(world: dict) -> None:
    """A single-tenant app the portal signs staff in with (app roles, the portal's callback, a FIC trusting the web
    process's own managed identity: no secret) and the home tenant's staff, one per role, one without any role."""
    web_resource = ("/subscriptions/00000000-0000-4000-8000-0000000000aa/resourceGroups/mssp-web/providers/"
                    "Microsoft.ManagedIdentity/userAssignedIdentities/keyless-web")
    world["managed_identities"].append({"client_id": WEB_MI_CLIENT_ID, "principal_id": WEB_MI_PRINCIPAL_ID,
                                        "tenant": HOME, "resource_id": web_resource, "name": "keyless-web"})
    world["apps"].append({
        "app_id": SIGNIN_APP_ID, "object_id": SIGNIN_APP_OBJECT_ID, "tenant": HOME,
        "display_name": "Contoso MSSP Portal Sign-in", "sign_in_audience": "AzureADMyOrg", "disabled": False,
        "redirect_uris": ["http://127.0.0.1:8000/signin/callback/", "http://localhost:8000/signin/callback/"],
        "app_roles": list(SIGNIN_APP_ROLES),
        "fics": [{"id": "2a3b4c5d-6e7f-4a8b-9c0d-1e2f3a4b5c6d", "name": "keyless-web",
                  "issuer": f"https://login.microsoftonline.com/{HOME}/v2.0", "subject": WEB_MI_PRINCIPAL_ID,
                  "audiences": ["api://AzureADTokenExchange"], "description": "The portal's web identity"}],
    })

    def user(n: int, name: str, upn: str, roles: list[str], mfa: bool = True, groups=()) -> dict:
        return {"oid": f"b0000000-0000-4000-8000-{n:012d}", "tenant": HOME, "upn": f"{upn}@contoso-mssp.example",
                "display_name": name, "mfa": mfa, "groups": list(groups), "app_roles": {SIGNIN_APP_ID: roles}}

    world["users"] = [
        user(1, "Adele Vance", "adele", ["Portal.Admin"], groups=["c0000000-0000-4000-8000-0000000000ad"]),
        user(2, "Omar Bennett", "omar", ["Portal.Operator"]),
        user(3, "Vera Lind", "vera", ["Portal.Viewer"]),
        user(4, "Audrey Kim", "audrey", ["Portal.Auditor"]),
        user(5, "Nestor Diaz", "nestor", []),
        user(6, "Pat Quinn (no MFA)", "pat", ["Portal.Operator"], mfa=False),
    ]


def load_world(path) -> dict:
    path = Path(path)
    text = path.read_text()
    return tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)


def normalise(world: dict) -> dict:
    world = copy.deepcopy(world)
    for key in ("tenants", "apps", "managed_identities", "service_principals", "subscriptions",
                "role_assignments", "oidc_issuers", "users"):
        world.setdefault(key, [])
    world.setdefault("graph_permissions", {})
    for tenant in world["tenants"]:
        tenant["id"] = tenant["id"].lower()
        tenant.setdefault("cloud", "global")
        tenant.setdefault("region", "WW")
        tenant.setdefault("domains", [])
        tenant.setdefault("display_name", tenant["domains"][0] if tenant["domains"] else tenant["id"])
    for app in world["apps"]:
        app.setdefault("object_id", str(uuid.uuid5(uuid.NAMESPACE_URL, app["app_id"])))
        app.setdefault("sign_in_audience", "AzureADMultipleOrgs")
        app.setdefault("redirect_uris", [])
        app.setdefault("disabled", False)
        app.setdefault("display_name", "App " + app["app_id"][:8])
        app.setdefault("fics", [])
        app.setdefault("app_roles", [])
        for fic in app["fics"]:
            fic.setdefault("id", str(uuid.uuid4()))
            fic.setdefault("description", "")
    return world


class World:
    """The live state, guarded by one lock; `save()` writes it to the state dir."""

    def __init__(self, world: dict, state_dir: Path | None = None):
        self.lock = threading.RLock()
        self.initial = normalise(world)
        self.fingerprint = hashlib.sha256(json.dumps(self.initial, sort_keys=True).encode()).hexdigest()
        self.state_path = Path(state_dir) / "state.json" if state_dir else None
        self.data = copy.deepcopy(self.initial)
        self.fic_created_at: dict[str, float] = {}
        self._tenant_index: tuple[list, int, dict] | None = None
        if self.state_path and self.state_path.exists():
            saved = json.loads(self.state_path.read_text())
            if saved.get("fingerprint") == self.fingerprint:
                self.data = saved["world"]

    def save(self) -> None:
        if self.state_path:
            tmp = self.state_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"fingerprint": self.fingerprint, "world": self.data}))
            tmp.replace(self.state_path)

    def reset(self) -> None:
        with self.lock:
            self.data = copy.deepcopy(self.initial)
            self.fic_created_at.clear()
            self.save()

    # --- lookups -----------------------------------------------------------------------------------------------
    def tenant(self, name: str) -> dict | None:
        """By GUID or verified domain; indexed, since a benchmark world holds thousands of tenants."""
        tenants = self.data["tenants"]
        if self._tenant_index is None or self._tenant_index[0] is not tenants or self._tenant_index[1] != len(tenants):
            by_name = {}
            for tenant in reversed(tenants):  # the first tenant claiming a name wins, as a linear search would
                for key in (tenant["id"], *tenant["domains"]):
                    by_name[key.lower()] = tenant
            self._tenant_index = (tenants, len(tenants), by_name)  # keeps the list alive: its identity stays unique
        return self._tenant_index[2].get(name.lower())

    def app(self, app_id: str) -> dict | None:
        return next((a for a in self.data["apps"] if a["app_id"].lower() == app_id.lower()), None)

    def app_by_object_id(self, object_id: str) -> dict | None:
        return next((a for a in self.data["apps"] if a["object_id"].lower() == object_id.lower()), None)

    def identity(self, *, client_id=None, principal_id=None, resource_id=None) -> dict | None:
        for mi in self.data["managed_identities"]:
            if (client_id and mi["client_id"].lower() == client_id.lower()) or (
                    principal_id and mi["principal_id"].lower() == principal_id.lower()) or (
                    resource_id and mi["resource_id"].lower() == resource_id.lower()):
                return mi
        return None

    def service_principal(self, tenant_id: str, app_id: str) -> dict | None:
        app = self.app(app_id)
        if app and app["tenant"] == tenant_id:  # an app always has its service principal at home
            return {"tenant": tenant_id, "app_id": app_id, "object_id": app["object_id"], "home": True}
        return next((sp for sp in self.data["service_principals"]
                     if sp["tenant"] == tenant_id and sp["app_id"].lower() == app_id.lower()), None)

    def subscriptions_for(self, tenant_id: str, principal: str) -> list[dict]:
        scopes = [r["scope"].lower() for r in self.data["role_assignments"]
                  if r["tenant"] == tenant_id and r["principal"] == principal]
        return [s for s in self.data["subscriptions"] if s["tenant"] == tenant_id and any(
            scope == "/" or scope.startswith(f"/subscriptions/{s['subscription_id']}".lower()) for scope in scopes)]

    def roles_on(self, tenant_id: str, principal: str, resource_id: str) -> list[str]:
        resource_id = resource_id.lower().rstrip("/")
        return [r["role"] for r in self.data["role_assignments"] if r["tenant"] == tenant_id
                and r["principal"] == principal and resource_id.startswith(r["scope"].lower().rstrip("/"))]

    def issuer(self, name: str) -> dict | None:
        return next((i for i in self.data["oidc_issuers"] if i["name"] == name or i["issuer"] == name), None)
