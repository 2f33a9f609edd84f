"""Receivers of onboarding: what other apps' events mean for customers' tenants."""
from django.db.models import F
from django.db.models.functions import Coalesce

from exchange.models import TokenTest
from onboarding.models import CustomerTenant


def tenant_health_update(sender, *, tenant_pks: list[int], outcome: str, at, **kwargs) -> None:
    """Tenant health, derived from a token test's outcome (exchange.signals.tenants_tested): last success,
    consecutive failures, failing since; an offboarded tenant's removal is confirmed by "not consented"."""
    tenants = CustomerTenant.objects.filter(pk__in=tenant_pks)
    fields = {"last_tested_at": at, "last_outcome": outcome}
    if outcome == TokenTest.Outcome.VERIFIED:
        fields.update(last_success_at=at, failing_since=None, consecutive_failures=0,
                      verified_at=Coalesce(F("verified_at"), at))
    else:
        fields.update(consecutive_failures=F("consecutive_failures") + 1,
                      failing_since=Coalesce(F("failing_since"), at))
    if outcome == TokenTest.Outcome.NOT_CONSENTED:
        tenants.filter(offboarded_at__isnull=False).update(
            removal_confirmed_at=Coalesce(F("removal_confirmed_at"), at))
    tenants.update(**fields)
