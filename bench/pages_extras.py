"""What else the staff pages read, at the scale of bench/pages_data.py: tags on customers and tenants, access profiles,
archived customers, the latest-check columns, an alert history with its deliveries, export jobs, audit verifications
and a released emergency stop. Written with the same insert_rows (COPY on PostgreSQL) after the tenants exist."""
import random
from datetime import timedelta

from django.db.models import Case, F, Value, When
from django.db.models.functions import Mod

from bench.pages_data import Scale, insert_rows
from exchange.estop_models import EmergencyStop
from exchange.profiles import AccessProfile
from onboarding.models import Customer, CustomerTenant, Tag
from ops.export_models import ExportJob
from ops.models import Alert, AlertKind, Delivery
from portal.verify_models import AuditVerification

TAGS = 10
ALERTS_PER_TENANT = 2  # 20,000 alerts at full scale: months of lost/restored access


def build_tags(scale: Scale) -> dict:
    """Every customer one of TAGS tags; a fifth of the tenants one of their own."""
    tags = Tag.objects.bulk_create([Tag(name=f"tier-{i}") for i in range(TAGS)])
    customers = list(Customer.objects.values_list("pk", flat=True))
    insert_rows(Customer.tags.through, ["customer_id", "tag_id"],
                ((pk, tags[pk % TAGS].pk) for pk in customers))
    tenant_tags = insert_rows(CustomerTenant.tags.through, ["customertenant_id", "tag_id"],
                              ((pk, tags[(pk // 5) % TAGS].pk) for pk in range(5, scale.tenants + 1, 5)))
    return {"tags": len(tags), "customer_tags": len(customers), "tenant_tags": tenant_tags}


def build_profiles(scale: Scale) -> int:
    """Three agreed-access profiles besides the default; every third customer has one."""
    profiles = [AccessProfile.objects.create(name=f"Bench profile {i}", grants=[{"role": "Reader", "scope": "*"}])
                for i in range(3)]
    for i, profile in enumerate(profiles):
        Customer.objects.alias(m=Mod("pk", 9)).filter(pk__gt=1, m=3 * i).update(access_profile=profile)
    return len(profiles)


def build_tenant_facts(scale: Scale, *, now) -> int:
    """The latest check beside the last definitive outcome (a few transient), and 1% of customers archived."""
    CustomerTenant.objects.alias(m=Mod("pk", 50)).update(last_check_at=F("last_tested_at"), last_check_outcome=Case(
        When(m=7, then=Value("transient")), default=F("last_outcome")))
    archived = Customer.objects.alias(m=Mod("pk", 100)).filter(m=42)
    CustomerTenant.objects.filter(customer__in=archived).update(offboarded_at=now - timedelta(days=3))
    return archived.update(archived_at=now - timedelta(days=3))


def build_alerts(scale: Scale, *, now) -> int:
    rng, kinds = random.Random(16), [AlertKind.LOST_ACCESS, AlertKind.RESTORED]
    count = scale.tenants * ALERTS_PER_TENANT
    span = timedelta(days=scale.sweeps) / count
    rows = ((n + 1, kinds[n % 2], f"bench:{n}", _customer_of(scale, 1 + n % scale.tenants), 1 + n % scale.tenants, f"Tenant {1 + n % scale.tenants:05d}: {kinds[n % 2].label}",
             "Bench alert.", {"outcome": rng.choice(["no_role", "misconfigured"])}, now - count * span + n * span)
            for n in range(count))
    written = insert_rows(Alert, ["id", "kind", "dedupe_key", "customer_id", "tenant_id", "title", "text", "facts",
                                  "created_at"], rows)
    insert_rows(Delivery, ["alert_id", "channel_kind", "status", "attempts", "next_attempt_at", "sent_at"],
                ((n + 1, "email", "sent", 1, now, now) for n in range(count)))
    _reset(Alert)
    return written


def _customer_of(scale: Scale, tenant: int) -> int:
    """The customer pk pages_data.build_tenants gave tenant pk `tenant`."""
    return 1 if tenant <= scale.big_customer else 2 + (tenant - scale.big_customer - 1) // 5


def build_jobs(*, user, now) -> None:
    """Finished exports, verifications and a released emergency stop, as a season of operating leaves them."""
    ExportJob.objects.bulk_create([ExportJob(kind=("audit", "tokentests")[i % 2], format=("csv", "jsonl")[i % 2],
                                             requested_by=user, status="succeeded", rows_total=1_000_000,
                                             rows_done=1_000_000, created_at=now - timedelta(hours=i),
                                             finished_at=now - timedelta(hours=i)) for i in range(50)])
    AuditVerification.objects.bulk_create([AuditVerification(mode=("incremental", "full")[i % 2], status="intact",
                                                              requested_by=user, through_seq=1000 * i,
                                                              created_at=now - timedelta(hours=i))
                                           for i in range(50)])
    EmergencyStop.objects.create(reason="Bench: a drill", engaged_by=user, engaged_by_label=user.username,
                                 engaged_at=now - timedelta(days=30), stage="ended", current=None,
                                 ended_at=now - timedelta(days=29))


def _reset(*models):
    from bench.pages_data import _reset_sequences
    _reset_sequences(*models)
