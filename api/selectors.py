"""Reads of the automation API: the portal token behind a bearer, tenants by derived status, keyset cursors."""
import base64
import json

from django.db.models import Q, QuerySet
from django.utils import timezone

from api.models import IdentityProvider, PortalToken
from api.services import TOKEN_PREFIX, token_hash
from onboarding.models import CustomerTenant


def portal_token_for(bearer: str) -> PortalToken | None:
    """The live portal token a bearer string stands for: not revoked, not expired, its provider enabled."""
    if not bearer.startswith(TOKEN_PREFIX) or len(bearer) > 100:
        return None
    return (PortalToken.objects.select_related("provider")
            .filter(token_hash=token_hash(bearer), revoked_at=None, expires_at__gt=timezone.now(),
                    provider__enabled=True).first())


def portal_token_refusal(bearer: str) -> str:
    """Why a bearer is refused, for the audit trail and a caller who can act on it (revoked vs expired)."""
    found = PortalToken.objects.filter(token_hash=token_hash(bearer)).select_related("provider").first()
    if found is None:
        return "unknown"
    if found.revoked_at:
        return "revoked"
    if found.expires_at <= timezone.now():
        return "expired"
    return "provider_disabled"


def identity_providers() -> QuerySet[IdentityProvider]:
    return IdentityProvider.objects.order_by("name")


def tenants(*, customer_id: int | None = None, status: str = "", cloud: str = "", search: str = "",
            outcome: str = "") -> QuerySet[CustomerTenant]:
    found = CustomerTenant.objects.select_related("customer")
    if customer_id:
        found = found.filter(customer_id=customer_id)
    if status:
        found = found.with_status_in(status)
    if cloud:
        found = found.filter(cloud=cloud)
    if outcome:
        found = found.filter(last_outcome=outcome)
    if search:
        found = found.filter(Q(primary_domain__icontains=search) | Q(display_name__icontains=search)
                             | Q(tenant_id__icontains=search) | Q(customer__name__icontains=search))
    return found


# --- keyset cursors: an opaque token holding the last row's ordering key -------------------------------------------
def cursor_encode(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def cursor_decode(cursor: str):
    """The value a cursor holds (ValueError when it is not one of ours)."""
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, TypeError) as exc:
        raise ValueError("not a cursor") from exc


def page_after(queryset: QuerySet, *, field: str, descending: bool, cursor: str | None, limit: int):
    """(rows, next cursor): up to `limit` rows of `queryset` ordered by the unique `field`, after the cursor's row."""
    if cursor:
        last = cursor_decode(cursor)
        if not isinstance(last, int):
            raise ValueError("not a cursor")
        queryset = queryset.filter(**{f"{field}__{'lt' if descending else 'gt'}": last})
    rows = list(queryset.order_by(f"-{field}" if descending else field)[:limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, cursor_encode(getattr(rows[-1], field)) if more and rows else None
