"""The audit trail: chained hashes, tamper detection by audit_verify, auditing of sign-ins, append-only storage."""
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from portal.models import AuditEvent
from portal.selectors import audit_chain_verify
from portal.services import GENESIS_HASH, Actor, audit_record, audit_record_many
from tests.conftest import PASSWORD
from tests.portal.audit_tools import tamper


def _record(n):
    return [audit_record(action=f"test.event{i}", actor=Actor.system("test"), detail={"i": i}) for i in range(n)]


_tamper = tamper


def _verify_output():
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_events_are_chained():
    first, second, third = _record(3)
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash and third.prev_hash == second.hash
    assert [e.seq for e in (first, second, third)] == [1, 2, 3]
    assert "3 events verified" in _verify_output()


@pytest.mark.django_db
def test_events_appended_together_chain_as_single_ones_do():
    (first,) = _record(1)
    batch = audit_record_many([{"action": f"test.batch{i}", "actor": Actor.system("test"), "detail": {"i": i}}
                               for i in range(3)])
    (last,) = _record(1)
    chain = [first, *batch, last]
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5]
    assert all(later.prev_hash == earlier.hash for earlier, later in zip(chain, chain[1:], strict=False))
    assert [e.action for e in AuditEvent.objects.order_by("seq")] == [e.action for e in chain]
    assert "5 events verified" in _verify_output()
    assert audit_record_many([]) == []


@pytest.mark.django_db
def test_model_refuses_update_and_delete():
    (event,) = _record(1)
    with pytest.raises(ValueError):
        event.save()
    with pytest.raises(ValueError):
        event.delete()


@pytest.mark.django_db
def test_verify_detects_an_edited_event():
    events = _record(4)
    _tamper("UPDATE portal_auditevent SET action = %s WHERE seq = %s", ["test.innocent", events[1].seq])
    report = audit_chain_verify()
    assert not report.ok and report.seq == 2 and "altered" in report.problem
    with pytest.raises(CommandError, match="event #2 was altered"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_verify_detects_an_edited_detail():
    events = _record(3)
    _tamper("UPDATE portal_auditevent SET detail = %s WHERE seq = %s", ['{"i": 99}', events[2].seq])
    assert audit_chain_verify().seq == 3


@pytest.mark.django_db
def test_verify_detects_a_deleted_event():
    events = _record(4)
    _tamper("DELETE FROM portal_auditevent WHERE seq = %s", [events[1].seq])
    report = audit_chain_verify()
    assert not report.ok and report.seq == 2 and "missing" in report.problem
    with pytest.raises(CommandError, match="event #2 is missing"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_verify_detects_a_deleted_and_renumbered_event():
    events = _record(4)
    _tamper("DELETE FROM portal_auditevent WHERE seq = %s", [events[1].seq])
    _tamper("UPDATE portal_auditevent SET seq = seq - 1 WHERE seq > %s", [events[1].seq])
    report = audit_chain_verify()
    assert not report.ok and report.seq == 2


@pytest.mark.django_db
def test_verify_detects_reordered_events():
    _record(4)
    _tamper("UPDATE portal_auditevent SET seq = 1000000 WHERE seq = 2")
    _tamper("UPDATE portal_auditevent SET seq = 2 WHERE seq = 3")
    _tamper("UPDATE portal_auditevent SET seq = 3 WHERE seq = 1000000")
    report = audit_chain_verify()
    assert not report.ok and report.seq == 2 and "does not follow" in report.problem


@pytest.mark.django_db
def test_login_logout_and_failed_login_are_audited(client, make_staff):
    user = make_staff("viewer", "ada")
    client.post(reverse("portal:login"), {"username": "ada", "password": "wrong"}, REMOTE_ADDR="203.0.113.9")
    failed = AuditEvent.objects.get(action="auth.login_failed")
    assert failed.detail == {"username": "ada"} and failed.ip == "203.0.113.9"
    assert "wrong" not in failed.canonical()
    response = client.post(reverse("portal:login"), {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302
    login = AuditEvent.objects.get(action="auth.login")
    assert login.actor_id == str(user.pk) and login.actor_label == "ada"
    client.post(reverse("portal:logout"))
    assert AuditEvent.objects.filter(action="auth.logout", actor_id=str(user.pk)).count() == 1
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_audit_page_filters_paginates_and_serves_a_fragment(staff_clients):
    for i in range(60):
        audit_record(action="test.bulk" if i % 2 else "test.other", actor=Actor.system("test"))
    client = staff_clients["auditor"]
    page = client.get(reverse("portal:audit-list"), {"action": "test.bulk"})
    assert page.status_code == 200 and b"<html" in page.content
    assert b"30 events" in page.content
    fragment = client.get(reverse("portal:audit-list"), {"action": "test.bulk"}, HTTP_HX_REQUEST="true")
    assert b"<html" not in fragment.content and b"test.bulk" in fragment.content and b"test.other" not in fragment.content
    first = client.get(reverse("portal:audit-list")).context["page"]
    second = client.get(reverse("portal:audit-list"), {"older": first.older}).context["page"]
    seqs = [e.seq for e in first] + [e.seq for e in second]
    assert len(first) == 50 and seqs == sorted(set(seqs), reverse=True) == list(range(seqs[0], 0, -1))


@pytest.mark.django_db
def test_verify_page_reports_the_break(staff_clients, django_capture_on_commit_callbacks):
    _record(3)
    client = staff_clients["auditor"]
    with django_capture_on_commit_callbacks(execute=True):  # the first verification: a full one, on a worker
        run_url = client.post(reverse("portal:audit-verify"), {"mode": "incremental"})["Location"]
    assert b"Intact" in client.get(run_url).content
    _tamper("UPDATE portal_auditevent SET actor_label = 'someone else' WHERE seq = 1")
    with django_capture_on_commit_callbacks(execute=True):
        run_url = client.post(reverse("portal:audit-verify"), {"mode": "full"})["Location"]
    assert b"event #1 was altered" in client.get(run_url).content
