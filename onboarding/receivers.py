"""Receivers of onboarding: what other apps' events mean for customers' tenants."""
from django.db.models import F
from django.db.models.functions import Coalesce

from exchange.models import TokenTest
from onboarding.models import CustomerTenant


def tenant_health_update(sender, *, tenant_pks: list[int], outcome: str, at, **kwargs) -> None:
    """Tenant health, derived from a token test's outcome (exchange.signals.tenants_tested).

    Every test is the tenant's last check (`last_check_at`, `last_check_outcome`). Only a definitive outcome, one
    that says something about the tenant, moves its health (last outcome, last success, consecutive failures, failing
    since): "transient" (Microsoft did not answer) and "propagating" (our own new FIC is not accepted yet) do not, so
    a verified tenant stays verified through an outage, with "last check could not reach Microsoft" beside it. An
    offboarded tenant's "not consented" confirms the app's removal: what was asked for, not a failure."""
    tenants = CustomerTenant.objects.filter(pk__in=tenant_pks)
    fields = {"last_check_at": at, "last_check_outcome": outcome}
    if not TokenTest.Outcome(outcome).definitive:
        tenants.update(**fields)
        return
    fields.update(last_tested_at=at, last_outcome=outcome)
    if outcome == TokenTest.Outcome.VERIFIED:
        tenants.update(**fields, last_success_at=at, failing_since=None, consecutive_failures=0,
                       verified_at=Coalesce(F("verified_at"), at))
        return
    if outcome == TokenTest.Outcome.NOT_CONSENTED:
        tenants.filter(offboarded_at__isnull=False).update(
            **fields, removal_confirmed_at=Coalesce(F("removal_confirmed_at"), at), failing_since=None,
            consecutive_failures=0)
        tenants = tenants.filter(offboarded_at__isnull=True)
    tenants.update(**fields, consecutive_failures=F("consecutive_failures") + 1,
                   failing_since=Coalesce(F("failing_since"), at))
