"""Tamper evidence: the keyed chain held against signed checkpoints outside the database. Each rewrite the issue names
is reported, naming what is wrong, by `audit_verify` and by the audit page's "Verify the chain"."""
import io
import json

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from portal import audit, verification
from portal.audit import SCHEME_SHA256
from portal.models import AuditEvent
from portal.selectors import audit_chain_verify
from portal.services import Actor, audit_checkpoint_write, audit_record
from portal.tasks import audit_checkpoint
from tests.portal.audit_tools import rehash_from, tamper


def _record(n, start=0):
    return [audit_record(action=f"test.event{i}", actor=Actor.system("test"), detail={"i": i})
            for i in range(start, start + n)]


def _checkpoint():
    return audit_checkpoint_write(reason="manual")


def _broken(expected: str, auditor) -> str:
    """The problem is named by the command (exit 1), by the selector and by the page."""
    with pytest.raises(CommandError) as raised:
        call_command("audit_verify", stdout=io.StringIO())
    assert expected in str(raised.value)
    report = audit_chain_verify()
    assert not report.ok and any(expected in problem for problem in report.problems)
    run = verification.audit_verification_create(mode="full")  # the page's full re-verification (a worker's job)
    verification.audit_verification_execute(verification_id=run.pk)
    page = auditor.get(reverse("portal:audit-verify-run", args=[run.pk])).content.decode()
    assert "Broken" in page and expected in page
    return str(raised.value)


def _files():
    return sorted(settings.AUDIT_CHECKPOINT_DIR.glob("*.jsonl"))


def _lines():
    return [line for path in _files() for line in path.read_text().splitlines()]


def _rewrite_store(lines):
    """The checkpoint store rewritten by someone with access to it (but without the key)."""
    for path in _files():
        path.unlink()
    (settings.AUDIT_CHECKPOINT_DIR / "2026-01-01.jsonl").write_text("".join(line + "\n" for line in lines))


@pytest.fixture
def auditor(staff_clients):
    return staff_clients["auditor"]


@pytest.mark.django_db
def test_intact_trail_agrees_with_its_checkpoints(auditor):
    _record(3)
    first = _checkpoint()
    _record(2, start=3)
    second = _checkpoint()
    assert (first.n, second.n) == (1, 2) and second.prev == first.sig
    assert second.head_seq == AuditEvent.objects.order_by("-seq").first().seq
    assert second.events == AuditEvent.objects.count() and second.key_id == audit.key_id()
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "2 checkpoints verified" in out.getvalue() and "Audit chain intact" in out.getvalue()
    report = audit_chain_verify()
    assert report.ok and report.checkpoints == 2 and report.newest_checkpoint == second
    assert "Intact" in auditor.get(reverse("portal:audit-verify")).content.decode()


@pytest.mark.django_db
def test_checkpoint_lines_are_appended_signed_json(settings):
    _record(1)
    _checkpoint()
    _checkpoint()
    lines = _lines()
    assert len(lines) == 2 and len(_files()) == 1
    stored = json.loads(lines[1])
    assert set(stored) == {"n", "at", "head_seq", "head_hash", "events", "reason", "prev", "key_id", "sig"}
    assert stored["sig"] == audit.Checkpoint(**stored).signature(settings.AUDIT_KEY.encode())


@pytest.mark.django_db
def test_one_edited_event_is_named(auditor):
    events = _record(4)
    _checkpoint()
    tamper("UPDATE portal_auditevent SET action = 'test.innocent' WHERE seq = %s", [events[1].seq])
    message = _broken(f"event #{events[1].seq} was altered after it was recorded", auditor)
    assert "checkpoint" not in message.splitlines()[0]  # the head the checkpoint signed is still in place
    assert audit_chain_verify().seq == events[1].seq


@pytest.mark.django_db
def test_chain_recomputed_without_the_key_is_named(auditor):
    events = _record(5)
    _checkpoint()
    tamper("UPDATE portal_auditevent SET detail = %s WHERE seq = %s", ['{"i": 99}', events[1].seq])
    rehash_from(events[1].seq, key=None)
    _broken(f"events #{events[1].seq}–#{events[-1].seq} do not verify with the audit key", auditor)
    _broken(f"event #{events[-1].seq} differs from what checkpoint #1", auditor)


@pytest.mark.django_db
def test_chain_recomputed_with_the_key_disagrees_with_the_checkpoints(auditor, settings):
    """An insider holding AUDIT_KEY (but not the checkpoint store) re-hashes a consistent chain: the checkpoints,
    signed before the rewrite, still name the old head."""
    events = _record(5)
    _checkpoint()
    tamper("UPDATE portal_auditevent SET actor_label = 'someone else' WHERE seq = %s", [events[2].seq])
    rehash_from(events[2].seq, key=settings.AUDIT_KEY.encode())
    message = _broken(f"event #{events[-1].seq} differs from what checkpoint #1", auditor)
    assert "the chain was rewritten at or before" in message
    assert "altered" not in message  # every link holds under the key: only the checkpoint tells


@pytest.mark.django_db
def test_chain_downgraded_to_the_unkeyed_scheme_is_named(auditor):
    events = _record(4)
    rehash_from(events[2].seq, key=None, scheme=SCHEME_SHA256)
    _broken(f"event #{events[2].seq} claims the unkeyed scheme of before AUDIT_KEY after keyed events", auditor)


@pytest.mark.django_db
def test_deleted_tail_is_named(auditor):
    events = _record(5)
    _checkpoint()
    tamper("DELETE FROM portal_auditevent WHERE seq > %s", [events[2].seq])
    _broken(f"the last 2 events were deleted: checkpoint #1 of {audit.checkpoints_read()[0].checkpoint.at} signed "
            f"event #{events[-1].seq} as the head, the table ends at #{events[2].seq}", auditor)


@pytest.mark.django_db
def test_every_event_deleted_is_named(auditor):
    _record(3)
    cp = _checkpoint()
    tamper("DELETE FROM portal_auditevent")
    assert not AuditEvent.objects.exists()
    # The auditor's own sign-in was recorded and then deleted with the rest; the page itself records nothing.
    _broken(f"every event was deleted: checkpoint #1 of {cp.at} signed a trail of {cp.events} events", auditor)


@pytest.mark.django_db
def test_removed_checkpoint_is_named(auditor):
    for i in range(3):
        _record(1, start=i)
        _checkpoint()
    lines = _lines()
    _rewrite_store([lines[0], lines[2]])
    _broken("checkpoint #2 is missing: 2026-01-01.jsonl line 2 holds #3, after #1", auditor)


@pytest.mark.django_db
def test_removed_first_checkpoints_are_named(auditor):
    for i in range(3):
        _record(1, start=i)
        _checkpoint()
    _rewrite_store(_lines()[2:])
    _broken("checkpoint #1–#2 is missing", auditor)


@pytest.mark.django_db
def test_altered_checkpoint_is_named(auditor):
    """Someone moves a checkpoint's head back (to hide events deleted after it): its signature no longer holds."""
    events = _record(4)
    _checkpoint()
    stored = json.loads(_lines()[0])
    stored["head_seq"], stored["head_hash"] = events[1].seq, events[1].hash
    _rewrite_store([json.dumps(stored)])
    _broken("checkpoint #1 (2026-01-01.jsonl line 1) was altered: its signature does not verify", auditor)


@pytest.mark.django_db
def test_unreadable_checkpoint_line_is_named(auditor):
    _record(1)
    _checkpoint()
    _rewrite_store([_lines()[0][:40]])
    _broken("checkpoint store: 2026-01-01.jsonl line 1 is unreadable", auditor)


@pytest.mark.django_db
def test_checkpoints_signed_with_another_key_are_named(auditor, settings):
    _record(2)
    _checkpoint()
    other = audit.key_id()
    settings.AUDIT_KEY = "another-audit-key-0123456789abcdef-xyz"
    rehash_from(1, key=settings.AUDIT_KEY.encode())  # so that only the checkpoint is in question
    _broken(f"was signed with another audit key (key id {other}", auditor)


@pytest.mark.django_db
def test_scheduled_checkpoint_is_written_only_when_the_trail_grew():
    _record(2)
    audit_checkpoint.delay()
    audit_checkpoint.delay()
    assert len(_lines()) == 1 and json.loads(_lines()[0])["reason"] == "schedule"
    _record(1, start=2)
    audit_checkpoint.delay()
    assert [json.loads(line)["head_seq"] for line in _lines()] == [2, 3]
    assert settings.CELERY_BEAT_SCHEDULE["audit-checkpoint"] == {
        "task": "portal.audit_checkpoint", "schedule": settings.AUDIT_CHECKPOINT_INTERVAL_MINUTES * 60}


@pytest.mark.django_db
def test_quick_verification_starts_at_the_newest_checkpoint(auditor):
    events = _record(4)
    _checkpoint()
    later = _record(2, start=4)
    quick = audit_chain_verify(full=False)
    assert quick.ok and quick.started_at == events[-1].seq + 1 and quick.checked == len(later)
    out = io.StringIO()
    call_command("audit_verify", "--quick", stdout=out)
    assert f"verified from #{events[-1].seq + 1}" in out.getvalue()
    # An edit before the checkpoint is what only the full walk finds; a cut tail both find.
    tamper("UPDATE portal_auditevent SET action = 'test.innocent' WHERE seq = %s", [events[0].seq])
    assert audit_chain_verify(full=False).ok and not audit_chain_verify().ok
    _checkpoint()
    tamper("DELETE FROM portal_auditevent WHERE seq = %s", [later[-1].seq])
    assert "the last 1 event was deleted" in audit_chain_verify(full=False).problem
    run = verification.audit_verification_run(mode="quick")
    page = auditor.get(reverse("portal:audit-verify-run", args=[run.pk])).content.decode()
    assert "the last 1 event was deleted" in page


@pytest.mark.django_db
def test_checkpoints_continue_across_day_files_and_a_removed_day_is_named(auditor):
    from datetime import UTC, datetime

    from portal.services import _chain_head

    _record(1)
    for day in (23, 24, 25):
        audit.checkpoint_append(read_head=_chain_head, reason="manual", now=datetime(2026, 11, day, 12, tzinfo=UTC))
    assert [path.name for path in _files()] == ["2026-11-23.jsonl", "2026-11-24.jsonl", "2026-11-25.jsonl"]
    assert [s.checkpoint.n for s in audit.checkpoints_read()] == [1, 2, 3] and audit_chain_verify().ok
    (settings.AUDIT_CHECKPOINT_DIR / "2026-11-24.jsonl").unlink()
    _broken("checkpoint #2 is missing: 2026-11-25.jsonl line 1 holds #3, after #1", auditor)


@pytest.mark.django_db
def test_a_report_names_at_most_fifty_problems_then_how_many_more():
    events = _record(121)
    tamper("DELETE FROM portal_auditevent WHERE seq %% 2 = 0 AND seq > %s", [events[0].seq])
    report = audit_chain_verify()
    assert len(report.problems) == 51 and report.problems[-1] == "… and 10 more problems"
    assert report.problems[0].startswith("event #") and "is missing" in report.problems[0]
