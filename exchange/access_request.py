"""What a no-role tenant's page offers to copy: the access check's findings (the last token test's steps) turned into
a message for the customer's admin, one `az role assignment create` command per missing (role, scope), and a link to
the Azure portal's Access control (IAM) blade of each scope. Plain data: no request, nothing secret (the service
principal's object id is the token's `oid` claim, an identifier)."""
import shlex
from dataclasses import dataclass, field

from exchange.chain import ARM_STEP, TENANT_STEP
from exchange.chain_access import ACCESS_STEP, EVERY_SUBSCRIPTION, describe

PORTALS = {"global": "https://portal.azure.com", "usgov": "https://portal.azure.us", "china": "https://portal.azure.cn"}
SUBSCRIPTION_PLACEHOLDER = "/subscriptions/<subscription id>"


@dataclass
class MissingRole:
    role: str
    scope: str  # an ARM scope, or EVERY_SUBSCRIPTION when the app sees none
    reason: str
    command: str
    portal_url: str

    @property
    def described(self) -> str:
        return describe({"role": self.role, "scope": self.scope})


@dataclass
class AccessRequest:
    principal_id: str
    subscriptions: list[dict]
    agreed: list[str]
    held: list[str]
    missing: list[MissingRole] = field(default_factory=list)
    message: str = ""

    @property
    def commands(self) -> str:
        return "\n".join(m.command for m in self.missing)


def portal_url(cloud: str, tenant_id: str, scope: str) -> str:
    """The Access control (IAM) blade of `scope` in the customer's directory; the subscriptions list when the app
    sees no subscription."""
    base = PORTALS.get(cloud, PORTALS["global"])
    if scope == EVERY_SUBSCRIPTION:
        return f"{base}/#@{tenant_id}/view/Microsoft_Azure_Billing/SubscriptionsBlade"
    return f"{base}/#@{tenant_id}/resource{scope}/users"


def az_command(*, principal_id: str, role: str, scope: str) -> str:
    where = SUBSCRIPTION_PLACEHOLDER if scope == EVERY_SUBSCRIPTION else scope
    return ("az role assignment create --assignee-object-id " + shlex.quote(principal_id or "<object id>")
            + " --assignee-principal-type ServicePrincipal --role " + shlex.quote(role)
            + " --scope " + (where if scope == EVERY_SUBSCRIPTION else shlex.quote(where)))


def _message(*, app_name: str, app_client_id: str, tenant_name: str, request: AccessRequest) -> str:
    wanted = "\n".join(f"- {m.described}" for m in request.missing)
    return (f"Hello,\n\nTo finish connecting {tenant_name}, please assign these Azure roles to the enterprise "
            f"application \"{app_name}\" (application id {app_client_id}; object id {request.principal_id} in your "
            f"tenant):\n{wanted}\n\nWith the Azure CLI, signed in to your tenant as an Owner or User Access "
            f"Administrator:\n{request.commands}\n\nOr in the Azure portal: open the scope, Access control (IAM) → "
            f"Add role assignment → the role → Members: \"User, group, or service principal\" → select "
            f"\"{app_name}\" → Review + assign.\n\nThank you.")


def access_request(test, *, app_name: str, app_client_id: str, tenant_name: str, tenant_id: str,
                   cloud: str) -> AccessRequest | None:
    """What the token test `test` found missing, ready to copy; None when it ran no access check."""
    steps = {s.name: s for s in test.steps.all()} if test else {}
    check = steps.get(ACCESS_STEP)
    if check is None:
        return None
    detail = check.detail or {}
    token_step = steps.get(TENANT_STEP)
    principal = str(detail.get("principal_id") or (token_step.claims.get("oid", "") if token_step else ""))
    arm_step = steps.get(ARM_STEP)
    request = AccessRequest(principal_id=principal,
                            subscriptions=(arm_step.detail or {}).get("subscriptions", []) if arm_step else [],
                            agreed=[describe(g) for g in detail.get("agreed", [])],
                            held=[describe(g) for g in detail.get("held", [])])
    for gap in detail.get("missing", []):
        request.missing.append(MissingRole(
            role=gap["role"], scope=gap["scope"], reason=gap.get("reason", ""),
            command=az_command(principal_id=principal, role=gap["role"], scope=gap["scope"]),
            portal_url=portal_url(cloud, tenant_id, gap["scope"])))
    if request.missing:
        request.message = _message(app_name=app_name, app_client_id=app_client_id, tenant_name=tenant_name,
                                   request=request)
    return request
