"""Reads of the tenants page: every tenant across customers, filtered, searched and sorted in SQL (status through
CustomerTenant.objects.with_status, the one definition), with their tags prefetched; the rows of its CSV export."""
from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Case, F, IntegerField, Prefetch, Q, QuerySet, Value, When

from exchange.clouds import is_guid
from onboarding.models import Customer, CustomerTenant, Tag
from onboarding.tags import tenants_tagged

# sort= value: (label, ordering). "-" in front of a value sorts descending; the tenant's pk breaks ties.
SORTS = {
    "customer": ("Customer", [F("customer__name").asc(), F("primary_domain").asc()]),
    "domain": ("Domain", [F("primary_domain").asc()]),
    "status": ("Status", [F("state_rank").asc(), F("customer__name").asc()]),
    "verified": ("Last verified", [F("last_success_at").asc(nulls_first=True)]),
    "failing": ("Failing since", [F("failing_since").asc(nulls_last=True)]),
}
DEFAULT_SORT = "customer"
REGIONS_CACHE_SECONDS = 60
# The page's columns as (sort key or "", heading).
COLUMNS = [("status", "Status"), ("domain", "Tenant"), ("customer", "Customer"), ("", "Cloud"), ("", "Region"),
           ("", "Tags"), ("verified", "Last verified"), ("failing", "Failing since")]


@dataclass(frozen=True)
class TenantFilters:
    status: str = ""
    customer: int | None = None
    cloud: str = ""
    region: str = ""
    tag: str = ""
    q: str = ""
    sort: str = DEFAULT_SORT
    archived: bool = False  # include the tenants of archived customers

    @property
    def active(self) -> bool:
        return any((self.status, self.customer, self.cloud, self.region, self.tag, self.q))


def _ordering(sort: str) -> list:
    descending = sort.startswith("-")
    _, ordering = SORTS.get(sort.lstrip("-"), SORTS[DEFAULT_SORT])
    if descending:
        ordering = [expr.copy() for expr in ordering]
        for expr in ordering:
            expr.descending = True
            expr.nulls_first, expr.nulls_last = expr.nulls_last, expr.nulls_first
    return [*ordering, F("pk").desc() if descending else F("pk").asc()]


def _search(q: str) -> Q:
    found = (Q(primary_domain__icontains=q) | Q(display_name__icontains=q) | Q(customer__name__icontains=q))
    if is_guid(q):
        found |= Q(tenant_id=q)
    return found


def _filtered(filters: TenantFilters) -> QuerySet[CustomerTenant]:
    found = CustomerTenant.objects.with_status()
    if filters.status:
        found = found.filter(state=filters.status)
    if filters.customer:
        found = found.filter(customer_id=filters.customer)
    elif not filters.archived:
        found = found.filter(customer__archived_at=None)
    if filters.cloud:
        found = found.filter(cloud=filters.cloud)
    if filters.region:
        found = found.filter(region__iexact=filters.region)
    if filters.tag:
        found = found.filter(tenants_tagged(filters.tag))
    if filters.q:
        found = found.filter(_search(filters.q))
    if filters.sort.lstrip("-") == "status":  # the lifecycle's order (TenantStatus), not the codes' alphabet
        found = found.annotate(state_rank=Case(*(When(state=value, then=Value(rank)) for rank, value in
                                                 enumerate(CustomerTenant.Status.values)), output_field=IntegerField()))
    return found.order_by(*_ordering(filters.sort))


def tenants(filters: TenantFilters) -> QuerySet[CustomerTenant]:
    """The tenants page's rows: filtered and sorted in one query; tags (own and customer's) in two more per page."""
    return _filtered(filters).select_related("customer").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.only("name"), to_attr="own_tags"),  # lists: no queryset per row
        Prefetch("customer__tags", queryset=Tag.objects.only("name"), to_attr="inherited_tags"))


CUSTOMER_CHOICES_MAX = 300  # past this many customers the filter lists only the chosen one (bench/pages.py)


def filter_choices(*, archived: bool = False, customer: str = "") -> dict:
    """What the filter form offers: customers (the archived ones too when asked), regions and tags in use. Customers
    are listed while they are at most CUSTOMER_CHOICES_MAX; past that only `customer` (the chosen pk, as given) is, and
    `customers_many` says so (the page then links to the searchable customers list, whose counts link back here)."""
    shown = Customer.objects.all() if archived else Customer.objects.filter(archived_at=None)
    named = shown.order_by("name").values_list("pk", "name")
    customers = list(named[:CUSTOMER_CHOICES_MAX + 1])
    many = len(customers) > CUSTOMER_CHOICES_MAX
    if many:
        customers = list(named.filter(pk=int(customer))) if customer.isdigit() else []
    return {
        "customers": customers, "customers_many": many,
        # A DISTINCT over every tenant, for a set that changes when a new region's first tenant is added: cached.
        "regions": cache.get_or_set("onboarding:tenant-regions", lambda: list(
            CustomerTenant.objects.exclude(region="").order_by("region").values_list("region", flat=True).distinct()),
            REGIONS_CACHE_SECONDS),
        "tags": list(Tag.objects.order_by("name").values_list("name", flat=True)),
    }


def effective_tag_names(tenant: CustomerTenant) -> list[str]:
    """A tenant's tags and its customer's (from tenants()' prefetch: no query)."""
    return sorted({t.name for t in tenant.own_tags} | {t.name for t in tenant.customer.inherited_tags})


EXPORT_FIELDS = ("customer", "domain", "display_name", "tenant_id", "cloud", "region", "status", "tags",
                 "last_tested_at", "last_outcome", "last_verified_at", "failing_since", "consecutive_failures")
_EXPORT_COLUMNS = ("customer__name", "primary_domain", "display_name", "tenant_id", "cloud", "region", "state", "pk",
                   "last_tested_at", "last_outcome", "last_success_at", "failing_since", "consecutive_failures",
                   "customer_id")


def _tag_names_by(through, owner: str) -> dict[int, set[str]]:
    names: dict[int, set[str]] = {}
    for pk, name in through.objects.values_list(owner, "tag__name").iterator(chunk_size=5000):
        names.setdefault(pk, set()).add(name)
    return names


def export_rows(filters: TenantFilters, chunk_size: int = 2000):
    """The export's rows (lists in EXPORT_FIELDS' order): tuples streamed from one query (no model instances), the
    tags from two maps read once."""
    own = _tag_names_by(CustomerTenant.tags.through, "customertenant_id")
    inherited = _tag_names_by(Customer.tags.through, "customer_id")
    none = set()
    for row in _filtered(filters).values_list(*_EXPORT_COLUMNS).iterator(chunk_size=chunk_size):
        row = list(row)
        row[3] = str(row[3])
        row[7] = " ".join(sorted(own.get(row[7], none) | inherited.get(row.pop(), none)))
        for i in (8, 10, 11):
            row[i] = row[i].isoformat() if row[i] else ""
        yield row
