"""Background exports: the list pages' buttons start a job with their filters; a real worker writes the file (CSV with
the formula guard, or JSON Lines), progress shows while it runs; only its requester may download it, while their role
allows the list; every step is audited, an audit export signs a checkpoint covering exactly what it holds; old files
are removed."""
import csv
import hashlib
import io
import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from exchange.models import TokenTest, TokenTestStep
from ops import exports
from ops.export_models import ExportJob
from ops.export_writers import _copy_sql
from portal import audit
from portal.models import AuditEvent
from portal.selectors import audit_chain_verify, audit_events
from portal.services import Actor, audit_record
from portal.spreadsheet import spreadsheet_safe


@pytest.fixture(autouse=True)
def _export_dir(settings, tmp_path):
    settings.EXPORT_DIR = tmp_path / "exports"


def _client(user):
    client = Client()
    client.force_login(user)
    return client


def _start(client, kind, fmt, **filters):
    response = client.post(reverse("ops:export-start", args=[kind]) + "?" + "&".join(
        f"{k}={v}" for k, v in filters.items()), {"format": fmt})
    assert response.status_code == 302, response.content
    return ExportJob.objects.order_by("-pk").first()


def _run(job):
    exports.export_execute(job_id=job.pk)
    job.refresh_from_db()
    return job


def _download(client, job):
    response = client.get(reverse("ops:export-download", args=[job.pk]))
    assert response.status_code == 200
    return b"".join(response.streaming_content)


@pytest.mark.parametrize(("cell", "safe"), [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("+SUM(1,2)", "'+SUM(1,2)"), ("-2+3", "'-2+3"),
    ("@SUM(1)", "'@SUM(1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("Fabrikam", "Fabrikam"), ("", ""),
    ("a=b", "a=b"), (42, 42), (None, None),
])
def test_cells_that_a_spreadsheet_would_evaluate_are_quoted(cell, safe):
    assert spreadsheet_safe(cell) == safe


@pytest.mark.real_worker
def test_an_audit_export_end_to_end_on_a_worker(start_worker, make_staff, settings):
    auditor = make_staff("auditor", "auditor")
    get_user_model().objects.filter(pk=auditor.pk).update(username="=cmd|' /C calc'!A0")  # a directory-synced name
    auditor.refresh_from_db()
    for i in range(30):
        audit_record(action="test.row", actor=Actor.staff(auditor), target_id=f"-{i}+1", detail={"i": i})
    audit_record(action="other.row", actor=Actor.system("t"))
    client = _client(auditor)
    queue, process = start_worker(EXPORT_DIR=str(settings.EXPORT_DIR))
    settings.JOBS_QUEUE = queue
    job = _start(client, "audit", "csv", action="test.")
    progress = client.get(reverse("ops:export-detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert progress.status_code in (200, 286) and b"<html" not in progress.content
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        job.refresh_from_db()
        if not job.running:
            break
        time.sleep(0.2)
    assert job.status == ExportJob.Status.SUCCEEDED, (job.error, process.poll())
    done = client.get(reverse("ops:export-detail", args=[job.pk]), HTTP_HX_REQUEST="true")
    assert done.status_code == 286 and b"Ready" in done.content  # polling stops
    body = _download(client, job)
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == job.rows_done == job.rows_total == 30 and {r["action"] for r in rows} == {"test.row"}
    assert rows[0]["actor_label"] == "'=cmd|' /C calc'!A0" and rows[3]["target_id"] == "'-3+1"
    assert rows[0]["detail"] == '{"i": 0}' or json.loads(rows[0]["detail"]) == {"i": 0}
    assert hashlib.sha256(body).hexdigest() == job.sha256 and len(body) == job.size
    finished = AuditEvent.objects.get(action="export.finished")
    assert finished.detail["sha256"] == job.sha256 and finished.detail["rows"] == 30
    assert finished.detail["filters"] == {"action": "test."} and finished.actor_id == str(auditor.pk)
    assert AuditEvent.objects.filter(action="export.requested", target_id=str(job.pk)).exists()
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_an_audit_export_holds_exactly_the_events_its_checkpoint_covers(make_staff):
    auditor = make_staff("auditor")
    client = _client(auditor)
    audit_record(action="test.a", actor=Actor.system("t"), detail={"k": "v"})
    job = _run(_start(client, "audit", "jsonl"))
    lines = [json.loads(line) for line in _download(client, job).decode().splitlines()]
    (cp,) = [s.checkpoint for s in audit.checkpoints_read()]
    assert cp.reason == "export" and lines[-1]["action"] == "export.requested"
    assert (lines[-1]["seq"], lines[-1]["hash"]) == (cp.head_seq, cp.head_hash) == (job.checkpoint["head_seq"],
                                                                                     job.checkpoint["head_hash"])
    assert lines[-2]["detail"] == {"k": "v"} and lines[-2]["at"].startswith(str(timezone.now().year))
    response = client.get(reverse("ops:export-download", args=[job.pk]))
    assert response["X-Audit-Checkpoint"] == f"n=1; head={cp.head_seq}; hash={cp.head_hash}"
    assert response["X-Content-SHA256"] == job.sha256


@pytest.mark.django_db
def test_a_token_test_export_has_the_list_filters_and_no_secret(make_staff, make_tenant):
    viewer = make_staff("viewer")
    tenant = make_tenant(primary_domain="=evil.example")
    now = timezone.now()
    verified = TokenTest.objects.create(tenant=tenant, trigger="manual", status="succeeded", outcome="verified",
                                        diagnosis_code="verified", started_at=now, finished_at=now)
    TokenTest.objects.create(tenant=tenant, trigger="manual", status="failed", outcome="no_role")
    TokenTestStep.objects.create(test=verified, name="customer_token", started_at=now, ok=True,
                                 claims={"aud": "https://management.azure.com"}, detail={"note": "n"})
    client = _client(viewer)
    job = _run(_start(client, "tokentests", "csv", outcome="verified"))
    (row,) = list(csv.DictReader(io.StringIO(_download(client, job).decode())))
    assert row["id"] == str(verified.pk) and row["tenant_domain"] == "'=evil.example"
    assert row["tenant_id"] == str(tenant.tenant_id) and row["customer"] == tenant.customer.name
    assert "claims" not in row and "management.azure.com" not in json.dumps(row)
    jsonl = _run(_start(client, "tokentests", "jsonl"))
    lines = [json.loads(line) for line in _download(client, jsonl).decode().splitlines()]
    assert [line["outcome"] for line in lines] == ["verified", "no_role"] and lines[0]["tenant_domain"] == "=evil.example"


@pytest.mark.django_db
def test_who_may_start_see_and_download(make_staff):
    viewer, auditor, other_auditor = make_staff("viewer"), make_staff("auditor"), make_staff("auditor", "auditor2")
    assert _client(viewer).post(reverse("ops:export-start", args=["audit"]), {"format": "csv"}).status_code == 403
    assert _client(auditor).post(reverse("ops:export-start", args=["tokentests"]),
                                 {"format": "csv"}).status_code == 403
    job = _run(_start(_client(auditor), "audit", "csv"))
    assert _client(other_auditor).get(reverse("ops:export-download", args=[job.pk])).status_code == 404
    assert _client(other_auditor).get(reverse("ops:export-detail", args=[job.pk])).status_code == 404
    assert b"No exports yet" in _client(other_auditor).get(reverse("ops:export-list")).content
    page = _client(auditor).get(reverse("ops:export-list"))
    assert page.status_code == 200 and reverse("ops:export-download", args=[job.pk]).encode() in page.content
    assert Client().get(reverse("ops:export-list")).status_code == 302
    auditor.groups.clear()  # the role is gone: so is the download
    assert _client(auditor).get(reverse("ops:export-download", args=[job.pk])).status_code == 403
    assert AuditEvent.objects.filter(action="export.downloaded").count() == 0


@pytest.mark.django_db
def test_bad_filters_start_nothing_and_say_why(make_staff):
    client = _client(make_staff("auditor"))
    response = client.post(reverse("ops:export-start", args=["audit"]) + "?since=not-a-date", {"format": "csv"},
                           follow=True)
    assert ExportJob.objects.count() == 0 and b"The filters are not valid" in response.content
    assert client.post(reverse("ops:export-start", args=["audit"]), {"format": "xlsx"}, follow=True).status_code == 200
    assert ExportJob.objects.count() == 0


@pytest.mark.django_db
def test_htmx_export_takes_the_filters_as_they_are_now(make_staff):
    client = _client(make_staff("auditor"))
    response = client.post(reverse("ops:export-start", args=["audit"]) + "?action=stale.",
                           {"format": "jsonl", "action": "fresh."}, HTTP_HX_REQUEST="true")
    job = ExportJob.objects.get()
    assert response["HX-Redirect"] == reverse("ops:export-detail", args=[job.pk])
    assert job.filters == {"action": "fresh."} and job.format == "jsonl"
    refused = client.post(reverse("ops:export-start", args=["audit"]), {"format": "jsonl", "since": "no"},
                          HTTP_HX_REQUEST="true")  # back to the list as a whole page, with the reason
    assert refused["HX-Redirect"] == reverse("portal:audit-list") and ExportJob.objects.count() == 1


@pytest.mark.django_db
def test_old_files_are_removed_and_dead_jobs_failed(make_staff, settings):
    client = _client(make_staff("auditor"))
    job = _run(_start(client, "audit", "csv"))
    path = Path(settings.EXPORT_DIR) / job.file_name
    assert path.is_file()
    assert exports.exports_expire() == {"expired": 0, "abandoned": 0}
    stuck = ExportJob.objects.create(kind="audit", format="csv", requested_by=job.requested_by, status="running",
                                     started_at=timezone.now() - timedelta(hours=3))
    later = timezone.now() + timedelta(hours=settings.EXPORT_RETENTION_HOURS + 1)
    assert exports.exports_expire(now=later) == {"expired": 1, "abandoned": 1}
    job.refresh_from_db()
    stuck.refresh_from_db()
    assert not path.exists() and job.status == "expired" and stuck.status == "failed" and "start the" in stuck.error
    assert client.get(reverse("ops:export-download", args=[job.pk])).status_code == 404
    assert AuditEvent.objects.get(action="export.files_removed").detail["expired"] == [job.pk]
    assert settings.CELERY_BEAT_SCHEDULE["exports-expire"]["task"] == "ops.exports_expire"


@pytest.mark.django_db
def test_a_failed_export_says_why_and_leaves_no_file(make_staff, settings, tmp_path):
    client = _client(make_staff("auditor"))
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    settings.EXPORT_DIR = blocker / "exports"
    job = ExportJob.objects.create(kind="audit", format="csv", requested_by=ExportJob._meta.get_field(
        "requested_by").related_model.objects.get(username="auditor-user"))
    _run(job)
    assert job.status == "failed" and "could not be written" in job.error
    assert b"could not be written" in client.get(reverse("ops:export-detail", args=[job.pk])).content


@pytest.mark.django_db
def test_rows_leave_in_key_order_without_a_sort_on_the_server(make_staff):
    """Numeric key order (not the text of the key), and on PostgreSQL along the index: a sort of the whole result
    would spill into a temporary file on the server."""
    client = _client(make_staff("auditor"))
    for i in range(25):
        audit_record(action="test.order", actor=Actor.system("t"), detail={"i": i})
    for fmt in ("csv", "jsonl"):
        job = _run(_start(client, "audit", fmt, action="test.order"))
        body = _download(client, job).decode()
        rows = (list(csv.DictReader(io.StringIO(body))) if fmt == "csv"
                else [json.loads(line) for line in body.splitlines()])
        seqs = [int(row["seq"]) for row in rows]
        assert len(seqs) == 25 and seqs == sorted(seqs)
    if connection.vendor == "postgresql":
        sql, params = _copy_sql(audit_events(), exports.KINDS["audit"].columns, "seq", "csv")
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL enable_sort = off")
            cursor.execute("EXPLAIN " + sql[len("COPY ("):sql.rindex(") TO STDOUT")], params)
            plan = "\n".join(row[0] for row in cursor.fetchall())
        assert "Sort" not in plan, plan
