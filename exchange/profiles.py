"""Access profiles: what the MSSP agreed with a customer — the Azure roles, and the scopes, its app must hold in the
customer's tenant. The token test checks them (exchange/chain_access.py); a customer without a profile of its own gets
the default one ("Reader on every subscription it can see", the behaviour before profiles existed)."""
import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from exchange.chain_access import DEFAULT_GRANTS, EVERY_SUBSCRIPTION, describe

EVERY_SUBSCRIPTION_WORDS = "every subscription it can see"
ROLE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ()._/-]{0,100}$")
SCOPE = re.compile(r"^/subscriptions/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                   r"(/[A-Za-z0-9._()-]+)*$|^/providers/Microsoft\.Management/managementGroups/[A-Za-z0-9._()-]+$")


def grants_parse(text: str) -> list[dict]:
    """One grant a line, "ROLE on SCOPE": SCOPE an ARM resource id, or "every subscription" (it can see). Raises
    ValidationError naming each bad line."""
    grants, problems = [], []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        role, on, scope = line.rpartition(" on ")
        role, scope = role.strip(), scope.strip().rstrip("/")
        if scope.lower() in ("every subscription", EVERY_SUBSCRIPTION_WORDS, EVERY_SUBSCRIPTION):
            scope = EVERY_SUBSCRIPTION
        if not on or not ROLE_NAME.match(role):
            problems.append(f"Line {number}: write “ROLE on SCOPE”, e.g. “Reader on every subscription”.")
        elif scope != EVERY_SUBSCRIPTION and not SCOPE.match(scope):
            problems.append(f"Line {number}: “{scope}” is not an ARM scope (/subscriptions/<id>[/resourceGroups/…] "
                            "or /providers/Microsoft.Management/managementGroups/<name>) nor “every subscription”.")
        elif {"role": role, "scope": scope} not in grants:
            grants.append({"role": role, "scope": scope})
    if problems:
        raise ValidationError(problems)
    if not grants:
        raise ValidationError("Name at least one role and scope.")
    return grants


def grants_format(grants: list[dict]) -> str:
    return "\n".join(describe(g).replace(EVERY_SUBSCRIPTION_WORDS, "every subscription") for g in grants)


class AccessProfile(models.Model):
    """The roles and scopes agreed with a customer (onboarding.Customer.access_profile)."""

    name = models.CharField(max_length=120, unique=True)
    description = models.TextField(blank=True)
    grants = models.JSONField(default=list, help_text='[{"role": "Reader", "scope": "*" or an ARM resource id}]')
    is_default = models.BooleanField("default profile", default=False,
                                     help_text="Used for every customer that has no profile of its own.")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-is_default", "name"]
        constraints = [models.UniqueConstraint(fields=["is_default"], condition=models.Q(is_default=True),
                                               name="accessprofile_one_default")]

    def __str__(self):
        return self.name

    def clean(self):
        grants_parse(grants_format(self.grants or []))  # the same rules as the form's text

    @property
    def grants_described(self) -> list[str]:
        return [describe(g) for g in self.grants]


def default_grants() -> list[dict]:
    return [dict(g) for g in DEFAULT_GRANTS]
