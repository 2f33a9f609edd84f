"""The data set of bench/pages.py: tenants, daily sweeps of token tests with their steps, and a valid audit chain.

Rows are made in Python and written with COPY on PostgreSQL (psycopg's cursor.copy), with bulk_create elsewhere (the
small data set of the test). Columns this module does not name get their model default, so a field added later does
not break it. Audit events are chained exactly as portal.services.audit_record_many chains them (AuditEvent.canonical
and compute_hash under AUDIT_KEY), continuing from the chain's current head: the result verifies."""
import json
import random
import uuid
from dataclasses import dataclass
from datetime import timedelta
from itertools import islice

from django.core.management.color import no_style
from django.db import connection
from django.db.models import JSONField

from exchange.models import HomeApp, Sweep, TokenTest, TokenTestStep
from onboarding.models import Customer, CustomerTenant
from portal import audit
from portal.audit import GENESIS_HASH
from portal.models import AuditEvent


@dataclass(frozen=True)
class Scale:
    tenants: int
    sweeps: int  # one a day, each testing every tenant: tests = tenants × sweeps, steps = 4 × tests
    audit_events: int
    big_customer: int  # the tenants of customer #1 (the "a customer" page); the others have 5 each

    @property
    def tests(self) -> int:
        return self.tenants * self.sweeps


FULL = Scale(tenants=10_000, sweeps=100, audit_events=1_000_000, big_customer=1_000)
SMALL = Scale(tenants=200, sweeps=10, audit_events=3_000, big_customer=40)

BATCH = 20_000
STEP_NAMES = ("imds", "home", "customer", "arm")
# A tenant's health decides its outcomes: most verified, some without a role, some failing with a catalogue code.
FAILURES = [("misconfigured", "AADSTS70021"), ("not_consented", "AADSTS700016"), ("blocked", "AADSTS53003"),
            ("tenant_not_found", "AADSTS90002"), ("transient", "transient"), ("misconfigured", "AADSTS700213")]


def insert_rows(model, attnames: list[str], rows) -> int:
    """Write `rows` (tuples of the values of `attnames`) into model's table; other columns get their default."""
    fields = model._meta.concrete_fields
    rest = [f for f in fields if f.attname not in attnames and not f.primary_key]
    if connection.vendor != "postgresql":
        defaults = {f.attname: f.get_default() for f in rest}
        count = 0
        while batch := list(islice(rows, BATCH)):
            model.objects.bulk_create([model(**defaults, **dict(zip(attnames, row, strict=True))) for row in batch])
            count += len(batch)
        return count
    by_name = {f.attname: f for f in fields}
    json_at = [i for i, name in enumerate(attnames) if isinstance(by_name[name], JSONField)]
    suffix = tuple(f.get_db_prep_save(f.get_default(), connection) for f in rest)
    columns = ", ".join(connection.ops.quote_name(by_name[name].column) for name in attnames + [f.attname for f in rest])
    count = 0
    with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
        for row in rows:
            if json_at:
                row = list(row)
                for i in json_at:
                    row[i] = json.dumps(row[i]) if row[i] else "{}"
            copy.write_row((*row, *suffix))
            count += 1
    return count


def _reset_sequences(*models):
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(sql)


def _health(rng: random.Random) -> tuple[str, str] | None:
    """None: verified every time; else the (outcome, code) this tenant fails with (no_role included)."""
    draw = rng.random()
    if draw < 0.85:
        return None
    if draw < 0.90:
        return "no_role", "no_role"
    return rng.choice(FAILURES)


def build_tenants(scale: Scale, *, now) -> tuple[HomeApp, list[tuple[int, uuid.UUID, tuple | None]]]:
    app = HomeApp.objects.create(name="Bench home app", client_id=uuid.uuid4(), home_tenant_id=uuid.uuid4())
    customers = 1 + (scale.tenants - scale.big_customer + 4) // 5
    insert_rows(Customer, ["id", "name", "created_at"], ((c, f"Customer {c:05d}", now) for c in range(1, customers + 1)))
    rng, tenants, rows = random.Random(14), [], []
    for i in range(1, scale.tenants + 1):
        health = _health(rng)
        customer = 1 if i <= scale.big_customer else 2 + (i - scale.big_customer - 1) // 5
        tenant_id = uuid.UUID(int=rng.getrandbits(128))
        tenants.append((i, tenant_id, health))
        outcome = health[0] if health else "verified"
        failing = health is not None and outcome != "no_role"
        rows.append((i, customer, tenant_id, f"t{i:05d}.example", f"Tenant {i:05d}", app.pk, now - timedelta(days=120),
                     now - timedelta(days=119), now - timedelta(days=1), outcome,
                     None if failing else now - timedelta(days=1), now - timedelta(days=scale.sweeps) if failing else None,
                     scale.sweeps if failing else 0))
    insert_rows(CustomerTenant, ["id", "customer_id", "tenant_id", "primary_domain", "display_name", "home_app_id",
                                 "created_at", "consent_received_at", "last_tested_at", "last_outcome",
                                 "last_success_at", "failing_since", "consecutive_failures"], iter(rows))
    _reset_sequences(Customer, CustomerTenant)
    return app, tenants


def _day_start(scale: Scale, day: int, now):
    return now - timedelta(days=scale.sweeps - day)


def _test_rows(scale: Scale, tenants, *, now):
    """One sweep a day, the newest yesterday, each testing every tenant (test pk = day × tenants + tenant pk)."""
    for day in range(scale.sweeps):
        start = _day_start(scale, day, now)
        for pk, _tenant_id, health in tenants:
            queued = start + timedelta(milliseconds=5 * pk)
            outcome, code = health or ("verified", "verified")
            yield (day * len(tenants) + pk, pk, "sweep", day + 1, "succeeded" if outcome == "verified" else "failed",
                   outcome, code, 1, queued, queued + timedelta(seconds=1), queued + timedelta(seconds=1.3))


def _step_rows(scale: Scale, tenants, *, now):
    """Four hops a test; a failing test's last hop carries its code."""
    for test_pk, _tenant, _trigger, _sweep, status, _outcome, code, _attempts, _queued, began, _ended in _test_rows(
            scale, tenants, now=now):
        for n, name in enumerate(STEP_NAMES):
            ok = status == "succeeded" or n < len(STEP_NAMES) - 1
            yield (test_pk, name, began + timedelta(milliseconds=70 * n), 70, ok, 200 if ok else 400,
                   "" if ok else code, f"{test_pk:08x}-{n}")


def build_tests(scale: Scale, tenants, *, now) -> int:
    failed = sum(1 for _pk, _tenant_id, health in tenants if health)
    sweeps = ((day + 1, "schedule", _day_start(scale, day, now), _day_start(scale, day, now) + timedelta(minutes=20),
               len(tenants), len(tenants), len(tenants) - failed, failed) for day in range(scale.sweeps))
    insert_rows(Sweep, ["id", "trigger", "started_at", "finished_at", "total", "done", "succeeded", "failed"], sweeps)
    insert_rows(TokenTest, ["id", "tenant_id", "trigger", "sweep_id", "status", "outcome", "diagnosis_code",
                            "attempts", "queued_at", "started_at", "finished_at"], _test_rows(scale, tenants, now=now))
    steps = insert_rows(TokenTestStep, ["test_id", "name", "started_at", "duration_ms", "ok", "http_status",
                                        "error_code", "trace_id"], _step_rows(scale, tenants, now=now))
    _reset_sequences(Sweep, TokenTest, TokenTestStep)
    return steps


AUDIT_ACTIONS = [("tokentest.finished", 0.80), ("consent.received", 0.05), ("consent_link.issued", 0.05),
                 ("tenant.added", 0.04), ("auth.login", 0.04), ("access.refused", 0.02)]


def _audit_events(scale: Scale, tenants, *, now, head: tuple[int, str]):
    """AuditEvent rows chained from `head` (seq, hash), oldest first, spread over the sweeps' days."""
    rng, key = random.Random(15), audit.audit_key()
    seq, prev_hash = head
    actions, weights = zip(*AUDIT_ACTIONS, strict=True)
    span = timedelta(days=scale.sweeps).total_seconds() / max(1, scale.audit_events)
    start = now - timedelta(days=scale.sweeps)
    for n in range(scale.audit_events):
        seq += 1
        action = rng.choices(actions, weights)[0]
        staff = action in ("auth.login", "access.refused", "consent_link.issued")
        tenant = tenants[rng.randrange(len(tenants))]
        event = AuditEvent(seq=seq, at=start + timedelta(seconds=n * span), action=action,
                           actor_kind="staff" if staff else "system", actor_id="1" if staff else "",
                           actor_label="bench-admin" if staff else "worker", target_type="tenant",
                           target_id=str(tenant[0]), tenant_id=str(tenant[1]),
                           detail={"outcome": (tenant[2] or ("verified",))[0]} if action == "tokentest.finished"
                           else {}, ip="203.0.113.7" if staff else None, prev_hash=prev_hash,
                           scheme=audit.CURRENT_SCHEME)
        event.hash = prev_hash = event.compute_hash(key)
        yield event


AUDIT_COLUMNS = ["seq", "at", "actor_kind", "actor_id", "actor_label", "action", "target_type", "target_id",
                 "tenant_id", "detail", "ip", "prev_hash", "hash", "scheme"]


def build_audit(scale: Scale, tenants, *, now) -> int:
    last = AuditEvent.objects.order_by("-seq").values_list("seq", "hash").first() or (0, GENESIS_HASH)
    rows = (tuple(getattr(event, name) for name in AUDIT_COLUMNS)
            for event in _audit_events(scale, tenants, now=now, head=last))
    count = insert_rows(AuditEvent, AUDIT_COLUMNS, rows)
    _reset_sequences(AuditEvent)
    return count


def analyze():
    """Fresh statistics for the planner (and the visibility map for index-only scans, outside a transaction)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE")
