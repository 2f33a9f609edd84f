"""Bulk onboarding: every row resolved on its own; a report of what was created and what was refused, and why."""
import hashlib

from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from emulator import world as demo
from onboarding.models import Customer, CustomerTenant
from portal.models import AuditEvent

CSV = (f"customer,domain_or_tenant_id\n"
       f"Fabrikam,fabrikam.example\n"
       f"Northwind,{demo.NORTHWIND}\n"
       f"Ghost Corp,ghost.example\n"
       f"Fabrikam again,fabrikam.example\n"
       f"Tailspin,tailspin.example\n").encode()


def _upload(client, app, data, name="tenants.csv"):
    return client.post(reverse("onboarding:bulk-import"),
                       {"file": SimpleUploadedFile(name, data, content_type="text/csv"), "home_app": app.pk})


def test_good_rows_created_bad_rows_refused_with_reasons(portal_on_emulator, operator_client):
    page = _upload(operator_client, portal_on_emulator.app, CSV)
    body = page.content.decode()
    assert page.status_code == 200 and "3 created, 2 refused" in body
    assert "No tenant named &#x27;ghost.example&#x27;" in body or "No tenant named 'ghost.example'" in body
    assert "already onboarded for Fabrikam" in body
    assert sorted(Customer.objects.values_list("name", flat=True)) == ["Fabrikam", "Northwind", "Tailspin"]
    assert CustomerTenant.objects.count() == 3
    # The refused rows left nothing behind: no customer "Ghost Corp" or "Fabrikam again" without a tenant.
    assert not Customer.objects.filter(tenants=None).exists()
    detail = AuditEvent.objects.get(action="tenant.bulk_import").detail
    assert detail == {"rows": 5, "created": 3, "refused": 2, "bytes": len(CSV),
                      "sha256": hashlib.sha256(CSV).hexdigest()}


def test_a_file_that_is_not_the_expected_csv_is_refused(portal_on_emulator, operator_client):
    page = _upload(operator_client, portal_on_emulator.app, b"name,domain\nx,y\n")
    assert page.status_code == 400 and "customer,domain_or_tenant_id" in page.content.decode()
    binary = _upload(operator_client, portal_on_emulator.app, b"\xff\xfe\x00garbage")
    assert binary.status_code == 400 and "UTF-8" in binary.content.decode()
    assert not Customer.objects.exists()
    assert AuditEvent.objects.filter(action="tenant.bulk_import_refused").count() == 2


def test_viewers_cannot_import(portal_on_emulator, staff_clients):
    assert _upload(staff_clients["viewer"], portal_on_emulator.app, CSV).status_code == 403


def _refused(page) -> list[str]:
    body = page.content.decode()
    assert page.status_code == 400 and "nothing was created" in body
    return body.split('id="import-problems"')[1].split("</section>")[0]


def _discovery_calls(portal_on_emulator) -> int:
    return portal_on_emulator.control.requests()["total"]


def test_too_many_rows_refused_before_anything_is_created_or_called(portal_on_emulator, operator_client):
    data = "customer,domain_or_tenant_id\n" + "".join(f"Customer {i},c{i}.example\n" for i in range(501))
    portal_on_emulator.control.reset_requests()
    problems = _refused(_upload(operator_client, portal_on_emulator.app, data.encode()))
    assert "The file has 501 rows: at most 500 per file" in problems
    assert _discovery_calls(portal_on_emulator) == 0
    assert not Customer.objects.exists() and not CustomerTenant.objects.exists()
    refused = AuditEvent.objects.get(action="tenant.bulk_import_refused")
    assert refused.detail["problems"] == 1 and refused.detail["bytes"] == len(data)
    assert "Customer 1" not in str(refused.detail)  # the file's content is not kept
    assert not AuditEvent.objects.filter(action__in=["customer.created", "tenant.added", "tenant.bulk_import"]).exists()


def test_every_problem_is_listed_by_line_and_column_and_nothing_is_created(portal_on_emulator, operator_client):
    data = ("customer,domain_or_tenant_id,notes\n"
            "Fabrikam,fabrikam.example,fine\n"
            "Bad domain,not a domain!,\n"
            "\n"
            ",tailspin.example\n"
            f"{'N' * 201},northwind.example\n"
            f"Long,{'a' * 250}.example\n"
            "Missing column\n").encode()
    portal_on_emulator.control.reset_requests()
    problems = _refused(_upload(operator_client, portal_on_emulator.app, data))
    assert "Line 3, column domain_or_tenant_id: “not a domain!” is neither a domain" in problems
    assert "Line 5, column customer: empty; a customer name is needed." in problems
    assert "Line 6, column customer: 201 characters; at most 200." in problems
    assert "Line 7, column domain_or_tenant_id: 258 characters; at most 255." in problems
    assert "Line 8, column domain_or_tenant_id: empty" in problems
    assert "Line 2" not in problems
    assert _discovery_calls(portal_on_emulator) == 0 and not Customer.objects.exists()
    assert AuditEvent.objects.get(action="tenant.bulk_import_refused").detail["problems"] == 5


def test_a_huge_field_is_a_clear_error_not_a_500(portal_on_emulator, operator_client):
    data = ("customer,domain_or_tenant_id\nFabrikam,fabrikam.example\n"
            f"Huge,{'x' * 140_000}\n").encode()
    problems = _refused(_upload(operator_client, portal_on_emulator.app, data))
    assert "Line 3: a value is longer than 131,072 characters (at most 255)." in problems
    assert not CustomerTenant.objects.exists()
    refused = AuditEvent.objects.get(action="tenant.bulk_import_refused")
    assert len(str(refused.detail)) < 1000 and refused.detail["sha256"] == hashlib.sha256(data).hexdigest()


def test_a_file_over_the_size_limit_is_refused_and_audited(portal_on_emulator, operator_client, settings):
    settings.BULK_IMPORT_MAX_BYTES = 100
    data = b"customer,domain_or_tenant_id\n" + b"Fabrikam,fabrikam.example\n" * 10
    problems = _refused(_upload(operator_client, portal_on_emulator.app, data))
    assert "larger than 100 bytes" in problems and not Customer.objects.exists()
    assert AuditEvent.objects.get(action="tenant.bulk_import_refused").detail["bytes"] == 101  # read no further


def test_control_characters_and_an_empty_file_are_refused_not_a_500(portal_on_emulator, operator_client):
    nul = _refused(_upload(operator_client, portal_on_emulator.app,
                           b"customer,domain_or_tenant_id\nFab\x00rikam,fabrikam.example\n"))
    assert "Line 2, column customer: contains control characters" in nul
    empty = _refused(_upload(operator_client, portal_on_emulator.app, b"customer,domain_or_tenant_id\n\n"))
    assert "a header but no rows" in empty
    assert "The file is empty" in _refused(_upload(operator_client, portal_on_emulator.app, b""))
    assert AuditEvent.objects.filter(action="tenant.bulk_import_refused").count() == 3


def test_a_long_list_of_problems_is_cut_short_but_counted(portal_on_emulator, operator_client):
    data = ("customer,domain_or_tenant_id\n" + "".join(f"C{i},not-a-domain\n" for i in range(80))).encode()
    problems = _refused(_upload(operator_client, portal_on_emulator.app, data))
    assert problems.count("<li>") == 51 and "… and 30 more problems." in problems
    assert AuditEvent.objects.get(action="tenant.bulk_import_refused").detail["problems"] == 80
