"""Seeding for the benchmark: the demo app and identity, and one customer with every world tenant but the demo's."""
from django.utils import timezone


def seed_bench_tenants(info: dict, world: dict) -> int:
    from exchange.demo import demo_seed
    from onboarding.models import Customer, CustomerTenant

    app, _identity = demo_seed(info)
    customer = Customer.objects.create(name="Benchmark customer")
    now = timezone.now()
    home = str(info["demo"]["home_tenant"]["id"])
    tenants = [CustomerTenant(customer=customer, tenant_id=t["id"], primary_domain=t["domains"][0],
                              display_name=t.get("display_name", ""), home_app=app, consent_received_at=now)
               for t in world["tenants"] if t["id"].startswith("b0000000")]
    CustomerTenant.objects.bulk_create(tenants, batch_size=500)
    assert home not in {t.tenant_id for t in tenants}
    return len(tenants)
