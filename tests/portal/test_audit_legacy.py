"""The migration path from the unkeyed SHA-256 chain (before AUDIT_KEY): events recorded by the old code stay
verifiable after migrating, new events chain on with HMAC from the last unkeyed hash, and a tampered legacy event is
still named."""
import hashlib
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from portal.audit import GENESIS_HASH, SCHEME_HMAC, SCHEME_SHA256
from portal.models import AuditEvent
from portal.selectors import audit_chain_verify
from portal.services import Actor, audit_checkpoint_write, audit_record
from tests.portal.audit_tools import tamper

BEFORE = [("portal", "0003_audit_append_only")]


def _old_hash(prev_hash: str, fields: dict) -> str:
    """portal/models.py's AuditEvent.canonical() and compute_hash() as they were before AUDIT_KEY."""
    canonical = json.dumps(
        {"seq": fields["seq"], "at": fields["at"].isoformat(timespec="microseconds"),
         "actor_kind": fields["actor_kind"], "actor_id": fields["actor_id"], "actor_label": fields["actor_label"],
         "action": fields["action"], "target_type": fields["target_type"], "target_id": fields["target_id"],
         "tenant_id": fields["tenant_id"], "detail": fields["detail"], "ip": fields["ip"]},
        sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


def _record_as_the_old_code(apps, n):
    OldEvent = apps.get_model("portal", "AuditEvent")
    prev, start = GENESIS_HASH, datetime(2026, 11, 1, 9, 30, 0, 123456, tzinfo=UTC)
    for seq in range(1, n + 1):
        fields = {"seq": seq, "at": start + timedelta(minutes=seq), "actor_kind": "staff", "actor_id": "7",
                  "actor_label": "ada", "action": f"legacy.event{seq}", "target_type": "customer",
                  "target_id": str(seq), "tenant_id": "", "detail": {"name": f"Customer {seq}", "n": seq},
                  "ip": "203.0.113.7"}
        event_hash = _old_hash(prev, fields)
        OldEvent.objects.create(prev_hash=prev, hash=event_hash, **fields)
        prev = event_hash


@pytest.fixture
def legacy_trail(transactional_db):
    """Three events recorded by the old code on the schema of before the migration, then every migration applied."""
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    _record_as_the_old_code(executor.loader.project_state(BEFORE).apps, 3)
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())
    return list(AuditEvent.objects.order_by("seq"))


def test_legacy_events_stay_verifiable_and_new_ones_chain_on_with_the_key(legacy_trail):
    assert [e.scheme for e in legacy_trail] == [SCHEME_SHA256] * 3
    assert audit_chain_verify().ok and audit_chain_verify().legacy == 3
    new = [audit_record(action=f"test.new{i}", actor=Actor.system("test")) for i in range(2)]
    assert [e.scheme for e in new] == [SCHEME_HMAC] * 2
    assert new[0].prev_hash == legacy_trail[-1].hash  # the first keyed event chains from the last unkeyed hash
    audit_checkpoint_write(reason="manual")
    report = audit_chain_verify()
    assert report.ok and report.checked == 5 and report.legacy == 3
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "5 events verified (3 of them from before AUDIT_KEY, on unkeyed SHA-256 links)" in out.getvalue()
    # A keyed event's hash is not the unkeyed one: recomputing it needs the key.
    stored = AuditEvent.objects.get(seq=new[0].seq)
    assert stored.hash != hashlib.sha256((stored.prev_hash + stored.canonical()).encode()).hexdigest()


def test_a_tampered_legacy_event_is_named(legacy_trail):
    audit_record(action="test.new", actor=Actor.system("test"))
    tamper("UPDATE portal_auditevent SET actor_label = 'someone else' WHERE seq = 2")
    report = audit_chain_verify()
    assert not report.ok and report.seq == 2 and "event #2 was altered" in report.problem
