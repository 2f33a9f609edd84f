"""A tenant's status is derived twice — in Python for one tenant (CustomerTenant.status) and in SQL for filtering,
sorting and counting thousands (CustomerTenant.objects.with_status()); both give the same answer for every
combination of the facts it is derived from."""
import itertools
from datetime import timedelta

from django.utils import timezone

from onboarding.models import CustomerTenant

OUTCOMES = ["", "verified", "no_role", "not_consented", "transient"]


def test_python_and_sql_status_agree_on_every_combination_of_facts(make_tenant):
    now = timezone.now()
    earlier, later = now - timedelta(hours=1), now
    made = []
    for offboarded, invited, consent, declined, verified, outcome in itertools.product(
            [None, now], [None, now], [None, earlier, later], [None, earlier, later], [None, now], OUTCOMES):
        made.append(make_tenant(offboarded_at=offboarded, invited_at=invited, consent_received_at=consent,
                                declined_at=declined, verified_at=verified, last_outcome=outcome))
    in_sql = dict(CustomerTenant.objects.with_status().values_list("pk", "state"))
    assert {tenant.pk: tenant.status for tenant in made} == in_sql
    assert set(in_sql.values()) == set(CustomerTenant.Status.values)  # every status was reached


def test_filtering_by_status_in_sql(make_tenant):
    verified = make_tenant(last_outcome="verified")
    make_tenant(last_outcome="no_role")
    make_tenant(consent_received_at=None, invited_at=timezone.now())
    assert list(CustomerTenant.objects.with_status_in("verified")) == [verified]
    assert CustomerTenant.objects.with_status_in("no_role", "invited").count() == 2
