"""Incremental verification from the last verified point (only new events re-hashed), a full re-verification as a
background job with progress on a real worker, the command recording its run, a forged point ignored."""
import io
import time

import pytest
from django.core.management import call_command
from django.urls import reverse

from portal import chain_verify, verification
from portal.models import AuditEvent
from portal.services import Actor, audit_record
from portal.verify_models import AuditVerification
from tests.portal.audit_tools import tamper

Mode = AuditVerification.Mode


def _record(n, start=0):
    return [audit_record(action=f"test.event{start + i}", actor=Actor.system("test"), detail={"i": i})
            for i in range(n)]


def _full():
    run = verification.audit_verification_create(mode=Mode.FULL)
    return verification.audit_verification_execute(verification_id=run.pk)


@pytest.mark.django_db
def test_incremental_verifies_only_the_new_events_and_detects_an_edit_after_the_point():
    _record(5)
    full = _full()
    assert full.status == "intact" and full.from_seq == 1 and full.checked == AuditEvent.objects.filter(
        seq__lte=full.through_seq).count()
    assert verification.verified_point().pk == full.pk
    _record(3, start=5)
    new = verification.audit_verification_run(mode=Mode.INCREMENTAL)
    # From the point's own event (re-hashed again) to the newest: the events recorded since, not the whole trail.
    assert new.status == "intact" and new.from_seq == full.through_seq
    assert new.checked == AuditEvent.objects.filter(seq__gte=full.through_seq, seq__lte=new.through_seq).count()
    assert new.checked < new.through_seq and verification.verified_point().pk == new.pk
    target = new.through_seq + 1
    _record(2, start=8)
    tamper("UPDATE portal_auditevent SET actor_label = 'someone else' WHERE seq = %s", [target])
    broken = verification.audit_verification_run(mode=Mode.INCREMENTAL)
    assert broken.status == "broken" and f"event #{target} was altered" in broken.problems[0]
    assert verification.verified_point().pk == new.pk  # a broken run is no point
    assert AuditEvent.objects.filter(action="audit.verified", detail__intact=False).count() == 1


@pytest.mark.django_db
def test_an_edit_before_the_point_needs_the_full_run():
    _record(4)
    _full()
    tamper("UPDATE portal_auditevent SET actor_label = 'someone else' WHERE seq = 2")
    assert verification.audit_verification_run(mode=Mode.INCREMENTAL).status == "intact"
    assert "event #2 was altered" in _full().problems[0]


@pytest.mark.django_db
def test_a_point_changed_in_the_database_is_no_point():
    _record(4)
    full = _full()
    AuditVerification.objects.create(mode=Mode.FULL, status="intact", through_seq=full.through_seq + 50,
                                     through_hash="f" * 64, sig="0" * 64)
    AuditVerification.objects.filter(pk=full.pk).update(through_seq=2)  # moved without the key
    assert verification.verified_point() is None
    run = verification.audit_verification_run(mode=Mode.INCREMENTAL)
    assert run.mode == Mode.FULL and run.from_seq == 1  # nothing verified: from genesis


@pytest.mark.django_db
def test_the_page_runs_the_incremental_check_and_starts_full_jobs(staff_clients, django_capture_on_commit_callbacks):
    _record(3)
    client = staff_clients["auditor"]
    assert b"Not verified yet" in client.get(reverse("portal:audit-verify")).content
    with django_capture_on_commit_callbacks(execute=True):
        first = client.post(reverse("portal:audit-verify"), {"mode": "incremental"})
    run = AuditVerification.objects.get()
    assert first["Location"] == reverse("portal:audit-verify-run", args=[run.pk]) and run.mode == Mode.FULL
    _record(2, start=3)
    second = client.post(reverse("portal:audit-verify"), {"mode": "incremental"})
    latest = AuditVerification.objects.first()
    assert latest.mode == Mode.INCREMENTAL and latest.status == "intact" and latest.pk != run.pk
    page = client.get(second["Location"])
    assert b"Intact" in page.content and f"#{latest.from_seq} to #{latest.through_seq}".encode() in page.content
    assert f"up to <strong>#{latest.through_seq}</strong>".encode() in client.get(reverse("portal:audit-verify")).content
    assert staff_clients["operator"].post(reverse("portal:audit-verify"), {"mode": "full"}).status_code == 403


@pytest.mark.django_db
def test_the_command_keeps_its_options_and_records_its_run():
    _record(3)
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert "events verified" in out.getvalue()
    assert verification.verified_point().requested_label == "manage.py audit_verify"
    call_command("audit_verify", "--quick", stdout=io.StringIO())
    assert AuditVerification.objects.first().mode == Mode.QUICK


@pytest.mark.real_worker
def test_a_full_reverification_runs_on_a_worker_with_progress(start_worker, staff_clients, settings, monkeypatch):
    _record(60)
    queue, process = start_worker()
    settings.JOBS_QUEUE = queue
    client = staff_clients["auditor"]
    response = client.post(reverse("portal:audit-verify"), {"mode": "full"})
    run = AuditVerification.objects.get()
    running = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert b"<html" not in running.content and b"verify-progress" in running.content
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        run.refresh_from_db()
        if not run.running:
            break
        time.sleep(0.2)
    assert run.status == "intact" and run.checked == run.events_total >= 60, (run.status, run.error)
    done = client.get(response["Location"], HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and b"Intact" in done.content


@pytest.mark.django_db
def test_the_walk_reads_pages_and_reports_progress(monkeypatch):
    monkeypatch.setattr(chain_verify, "WALK_CHUNK", 3)
    monkeypatch.setattr(chain_verify, "PROGRESS_EVERY", 2)
    _record(10)
    seen = []
    assert chain_verify.audit_chain_verify(progress=seen.append).checked == 10 and seen == [2, 4, 6, 8, 10]
    tamper("DELETE FROM portal_auditevent WHERE seq IN (4, 5, 6)")  # a whole page's worth, across pages
    report = chain_verify.audit_chain_verify()
    assert report.checked == 7 and report.problem == "events #4–#6 are missing (next is #7)"
