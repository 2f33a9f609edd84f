"""Tags on customers and tenants: parsing what a person typed, getting the Tag rows, and "carries this tag" as a
condition the database evaluates (a tenant carries its own tags and its customer's)."""
import re

from django.core.exceptions import ValidationError
from django.db.models import Q

from onboarding.models import Customer, CustomerTenant, Tag

SEPARATORS = re.compile(r"[,;\s]+")
MAX_TAGS = 20  # per customer or tenant


def tags_parse(text: str) -> list[str]:
    """Tag names from free text ("tier-1, eu; pilot"), lowercased, each checked; raises ValidationError naming the
    bad ones."""
    names = sorted({name.lower() for name in SEPARATORS.split(text or "") if name})
    field, bad = Tag._meta.get_field("name"), []
    for name in names:
        try:
            field.clean(name, None)  # the field's own checks (format, length), not the row's uniqueness
        except ValidationError:
            bad.append(name[:70])
    if bad:
        raise ValidationError(f"Not a tag: {', '.join(bad)}. A tag is at most 64 lowercase letters, digits, and "
                              ". _ : - (e.g. tier-1), separated by commas or spaces.")
    if len(names) > MAX_TAGS:
        raise ValidationError(f"{len(names)} tags: at most {MAX_TAGS}.")
    return names


def tags_get_or_create(names) -> list[Tag]:
    """The Tag rows of these names, created when new (no audit of its own: the write that sets them is audited)."""
    names = sorted(set(names))
    existing = {tag.name: tag for tag in Tag.objects.filter(name__in=names)}
    missing = [Tag(name=name) for name in names if name not in existing]
    Tag.objects.bulk_create(missing, ignore_conflicts=True)
    return list(Tag.objects.filter(name__in=names)) if missing else [existing[name] for name in names]


def tenants_tagged(name: str) -> Q:
    """A condition on CustomerTenant: the tenant, or its customer, carries the tag (subqueries: no duplicate rows)."""
    own = CustomerTenant.tags.through.objects.filter(tag__name=name).values("customertenant_id")
    customers = Customer.tags.through.objects.filter(tag__name=name).values("customer_id")
    return Q(pk__in=own) | Q(customer_id__in=customers)


CHUNK = 500  # ids per IN (...): within SQLite's limit on parameters


def _chunks(ids) -> list[list[int]]:
    ids = sorted(ids)
    return [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]


def effective_tags(*, tenant_ids=(), customer_ids=()) -> tuple[dict[int, set[str]], dict[int, set[str]]]:
    """Tag names by tenant (its own and its customer's) and by customer: three queries per 500 ids."""
    owners = {}
    for chunk in _chunks(set(tenant_ids)):
        owners.update(CustomerTenant.objects.filter(pk__in=chunk).values_list("pk", "customer_id"))
    by_customer: dict[int, set[str]] = {pk: set() for pk in set(customer_ids) | set(owners.values())}
    for chunk in _chunks(by_customer):
        for customer_id, name in Customer.tags.through.objects.filter(customer_id__in=chunk).values_list(
                "customer_id", "tag__name"):
            by_customer[customer_id].add(name)
    by_tenant = {pk: set(by_customer[customer_id]) for pk, customer_id in owners.items()}
    for chunk in _chunks(owners):
        for tenant_id, name in CustomerTenant.tags.through.objects.filter(customertenant_id__in=chunk).values_list(
                "customertenant_id", "tag__name"):
            by_tenant[tenant_id].add(name)
    return by_tenant, by_customer
