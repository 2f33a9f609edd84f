"""Actions on many tenants at once (the tenants page's selection): issue consent links, test now, offboard, add or
remove a tag. Each tenant that cannot take the action is refused with its reason while the others go ahead; each
tenant's own write is audited by its service, and the bulk action once more with what was done and refused."""
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import TextChoices

from exchange import selectors as exchange_selectors
from exchange.models import TokenTest
from exchange.services import token_test_start
from onboarding.models import ConsentLink, Customer, CustomerTenant
from onboarding.services import consent_link_issue, tenant_offboard
from onboarding.tags import tags_get_or_create
from portal.services import Actor, audit_record

MAX_SELECTED = 500


class BulkAction(TextChoices):
    ISSUE_LINKS = "issue_links", "Issue consent links"
    TEST_NOW = "test_now", "Test now"
    OFFBOARD = "offboard", "Offboard"
    TAG_ADD = "tag_add", "Add a tag"
    TAG_REMOVE = "tag_remove", "Remove a tag"


@dataclass
class IssuedLink:
    tenant: CustomerTenant
    link: ConsentLink
    url: str  # shown once, on the result page; never stored


@dataclass
class BulkResult:
    action: BulkAction
    done: list[CustomerTenant] = field(default_factory=list)
    refused: list[tuple[CustomerTenant, str]] = field(default_factory=list)
    links: list[IssuedLink] = field(default_factory=list)
    tests: list[TokenTest] = field(default_factory=list)

    def links_by_customer(self) -> list[tuple[Customer, list[IssuedLink]]]:
        """One message per customer admin: the links of that customer's tenants together."""
        grouped: dict[int, tuple[Customer, list[IssuedLink]]] = {}
        for issued in self.links:
            grouped.setdefault(issued.tenant.customer_id, (issued.tenant.customer, []))[1].append(issued)
        return sorted(grouped.values(), key=lambda item: item[0].name)


def _refusal(action: BulkAction, tenant: CustomerTenant, tag: str) -> str:
    """Why `tenant` cannot take `action` ("" when it can)."""
    offboarded = tenant.offboarded_at is not None
    if action == BulkAction.ISSUE_LINKS and offboarded:
        return "offboarded: no consent link can be issued for it."
    if action == BulkAction.OFFBOARD and offboarded:
        return "already offboarded."
    if action == BulkAction.TEST_NOW:
        if tenant.testing_ended:
            return "offboarded and the app's removal is confirmed: it is not tested."
        running = exchange_selectors.tenant_running_test(tenant)
        if running:
            return f"a token test is already {running.get_status_display().lower()}."
    if action == BulkAction.TAG_REMOVE and tag not in {t.name for t in tenant.tags.all()}:
        inherited = tag in {t.name for t in tenant.customer.tags.all()}
        return (f"“{tag}” comes from its customer {tenant.customer}: remove it there." if inherited
                else f"does not carry “{tag}”.")
    return ""


def _apply(action: BulkAction, tenant: CustomerTenant, tag, actor: Actor, user, result: BulkResult) -> None:
    if action == BulkAction.ISSUE_LINKS:
        link, url = consent_link_issue(tenant=tenant, actor=actor, issued_by=user)
        result.links.append(IssuedLink(tenant, link, url))
    elif action == BulkAction.TEST_NOW:
        result.tests.append(token_test_start(tenant=tenant, trigger=TokenTest.Trigger.MANUAL, actor=actor,
                                             requested_by=user))
    elif action == BulkAction.OFFBOARD:
        tenant_offboard(tenant=tenant, actor=actor)
    elif action == BulkAction.TAG_ADD:
        tenant.tags.add(tag)
    else:
        tenant.tags.remove(tag)


def tenants_bulk_act(*, action: str, tenant_pks: list[int], actor: Actor, user=None, tag: str = "") -> BulkResult:
    """Apply `action` to each selected tenant that can take it; refuse the others with their reason. The tag actions
    need `tag` (a valid tag name); every action is audited once as `tenant.bulk_<action>` besides each tenant's own
    event (consent_link.issued, tokentest.queued, tenant.offboarded)."""
    action = BulkAction(action)
    if not tenant_pks:
        raise ValidationError("Select at least one tenant.")
    if len(tenant_pks) > MAX_SELECTED:
        raise ValidationError(f"{len(tenant_pks)} tenants selected: at most {MAX_SELECTED} at once.")
    tag_row = None
    if action in (BulkAction.TAG_ADD, BulkAction.TAG_REMOVE):
        if not tag:
            raise ValidationError("Choose the tag to add or remove.")
        tag_row = tags_get_or_create([tag])[0]
    result = BulkResult(action)
    tenants = (CustomerTenant.objects.filter(pk__in=tenant_pks).select_related("customer", "home_app")
               .prefetch_related("tags", "customer__tags").order_by("customer__name", "primary_domain", "pk"))
    with transaction.atomic():
        for tenant in tenants:
            reason = _refusal(action, tenant, tag)
            if reason:
                result.refused.append((tenant, reason))
                continue
            _apply(action, tenant, tag_row, actor, user, result)
            result.done.append(tenant)
        audit_record(action=f"tenant.bulk_{action.value}", actor=actor, target_type="tenant", detail={
            "tag": tag, "done": [str(t.tenant_id) for t in result.done],
            "refused": {str(t.tenant_id): reason for t, reason in result.refused}})
    return result


def offboard_preview(*, tenant_pks: list[int]) -> tuple[list[CustomerTenant], list[CustomerTenant]]:
    """What a bulk offboard would do: (tenants it would offboard, tenants already offboarded)."""
    tenants = list(CustomerTenant.objects.filter(pk__in=tenant_pks[:MAX_SELECTED]).select_related("customer")
                   .order_by("customer__name", "primary_domain", "pk"))
    return [t for t in tenants if t.offboarded_at is None], [t for t in tenants if t.offboarded_at is not None]
