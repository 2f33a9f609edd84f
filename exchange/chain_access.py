"""The chain's last hop, the access check: does the app's service principal hold every (role, scope) the MSSP agreed
with the customer (the customer's access profile)? Read from ARM with the customer-tenant token: the principal's
role assignments at or above each scope (inherited ones count), by role name; where it may not read them, or holds
another role, its effective permissions there (`…/Microsoft.Authorization/permissions`) against the role's own.

The outcome says exactly what is missing (the step's `detail["missing"]`), for the no-role panel and its commands.
"""
import re
from dataclasses import dataclass, field
from http import HTTPStatus

from exchange import arm
from exchange.chain_steps import ChainResult, ChainStep, Step, step_failed
from exchange.faults import ARM, classify

ACCESS_STEP = "access_check"
VERIFIED, NO_ROLE = "verified", "no_role"
EVERY_SUBSCRIPTION = "*"  # a grant's scope meaning "each subscription the app can see"
DEFAULT_GRANTS = ({"role": "Reader", "scope": EVERY_SUBSCRIPTION},)  # the behaviour before access profiles
# Built-in roles have the same ids in every tenant: no request needed to name them.
BUILT_IN_ROLES = {
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "43d0d8ad-25c7-4714-9337-8ba259a9fe05": "Monitoring Reader",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}


class Unanswered(Exception):
    """ARM did not answer a question of the check usefully (throttled, down, refused the token): the test failed."""

    def __init__(self, answer: arm.ArmAnswer):
        super().__init__(answer.error_code)
        self.answer = answer


def agreed_scopes(grants, subscriptions: list[dict]) -> tuple[list[dict], list[dict]]:
    """(the (role, scope) pairs to check, those missing already): "every subscription" becomes one pair per visible
    subscription, or is missing as a whole when the app sees none."""
    pairs, missing = [], []
    for grant in grants:
        if grant["scope"] != EVERY_SUBSCRIPTION:
            pairs.append({"role": grant["role"], "scope": grant["scope"]})
        elif subscriptions:
            pairs += [{"role": grant["role"], "scope": f"/subscriptions/{s['id']}"} for s in subscriptions]
        else:
            missing.append({"role": grant["role"], "scope": EVERY_SUBSCRIPTION,
                            "reason": "ARM lists no subscription the app can see."})
    return pairs, missing


def probed_subscription(resource_id: str) -> list[dict]:
    """An app that probes one resource (HomeApp.probe_resource_id) sees at least the subscription it lies in: there,
    "every subscription" means that one."""
    parts = resource_id.strip("/").split("/")
    return [{"id": parts[1], "name": "", "state": ""}] if len(parts) > 1 and parts[0].lower() == "subscriptions" else []


def _covers(patterns: list[str], action: str) -> bool:
    action = action.lower()
    return any(re.match("^" + ".*".join(re.escape(part) for part in p.lower().split("*")) + "$", action)
               for p in patterns)


def _allows(entries: list[dict], action: str, allow: str, deny: str) -> bool:
    return any(_covers(e.get(allow, []), action) and not _covers(e.get(deny, []), action) for e in entries)


@dataclass
class _Checker:
    arm_base: str
    access_token: str
    principal_id: str
    names: dict = field(default_factory=lambda: dict(BUILT_IN_ROLES))  # role definition guid → name

    def _ok(self, answer: arm.ArmAnswer, *also: int) -> arm.ArmAnswer:
        if answer.http_status != HTTPStatus.OK and answer.http_status not in also:
            raise Unanswered(answer)
        return answer

    def _role_name(self, definition_id: str) -> str:
        guid = definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
        if guid not in self.names:
            answer = self._ok(arm.role_definition(arm_base=self.arm_base, access_token=self.access_token,
                                                  definition_id=definition_id))
            self.names[guid] = str(answer.body.get("properties", {}).get("roleName", guid))
        return self.names[guid]

    def _covered_by_permissions(self, role: str, scope: str) -> bool:
        """The caller's effective permissions on `scope` include every action of `role` (e.g. Contributor covers
        Reader)."""
        found = self._ok(arm.role_definitions_named(arm_base=self.arm_base, access_token=self.access_token,
                                                    scope=scope, role=role)).value
        if not found:
            return False
        wanted = (found[0].get("properties", {}).get("permissions") or [{}])[0]
        held = self._ok(arm.permissions(arm_base=self.arm_base, access_token=self.access_token, scope=scope)).value
        return all(_allows(held, a, "actions", "notActions") for a in wanted.get("actions", [])) and all(
            _allows(held, a, "dataActions", "notDataActions") for a in wanted.get("dataActions", []))

    def check(self, role: str, scope: str) -> dict:
        """{"held": True, "via", "at"} or {"held": False, "reason", "holds"} for one agreed (role, scope)."""
        answer = self._ok(arm.role_assignments(arm_base=self.arm_base, access_token=self.access_token, scope=scope,
                                               principal_id=self.principal_id), 403, 404)
        if answer.http_status == HTTPStatus.NOT_FOUND:
            return {"held": False, "reason": f"ARM: {answer.error_code} (the scope does not exist)", "holds": []}
        holds = [(self._role_name(a.get("properties", {}).get("roleDefinitionId", "")),
                  a.get("properties", {}).get("scope", "")) for a in answer.value]
        at = next((where for name, where in holds if name.lower() == role.lower()), None)
        if at is not None:
            return {"held": True, "via": "role assignment", "at": at}
        if self._covered_by_permissions(role, scope):
            return {"held": True, "via": "permissions", "at": scope}
        refused = answer.http_status == HTTPStatus.FORBIDDEN
        return {"held": False, "holds": sorted({name for name, _ in holds}),
                "reason": "The app may not read its role assignments there and its permissions fall short."
                if refused else "No assignment of this role at this scope or above it."}


def access_hop(steps: list[ChainStep], *, arm_base: str, access_token: str, principal_id: str, grants,
               subscriptions: list[dict]) -> ChainResult:
    """5. The agreed access: verified only when every agreed (role, scope) is held; otherwise no_role, with what is
    missing in the step's detail."""
    with Step(steps, ACCESS_STEP) as step:
        pairs, missing = agreed_scopes(grants, subscriptions)
        step.detail = {"principal_id": principal_id, "agreed": [dict(g) for g in grants], "held": [],
                       "missing": missing}
        checker = _Checker(arm_base, access_token, principal_id)
        try:
            for pair in pairs:
                found = checker.check(pair["role"], pair["scope"])
                (step.detail["held"] if found.pop("held") else step.detail["missing"]).append({**pair, **found})
        except Unanswered as exc:
            answer = exc.answer
            step.http_status, step.correlation_id = answer.http_status, answer.correlation_id[:64]
            failure = classify(ARM, status=answer.http_status, retry_after=answer.retry_after,
                               error={"error": {"code": answer.error_code, "message": answer.message}})
            return step_failed(steps, step, failure, {"error": answer.error_code, "http_status": answer.http_status})
        except Exception as exc:  # noqa: BLE001 - no answer at all (network): classified like the probe's
            return step_failed(steps, step, classify(ARM, exc=exc))
        step.http_status = HTTPStatus.OK
        if step.detail["missing"]:
            step.error_code = NO_ROLE
            step.message = "Missing: " + "; ".join(describe(m) for m in step.detail["missing"])
            return ChainResult(steps, NO_ROLE)
        step.ok = True
        return ChainResult(steps, VERIFIED)


def describe(grant: dict) -> str:
    """"Reader on /subscriptions/…", or "Reader on every subscription it can see"."""
    scope = "every subscription it can see" if grant["scope"] == EVERY_SUBSCRIPTION else grant["scope"]
    return f"{grant['role']} on {scope}"
