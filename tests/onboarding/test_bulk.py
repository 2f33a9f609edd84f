"""Bulk onboarding: every row resolved on its own; a report of what was created and what was refused, and why."""
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
       f",tailspin.example\n"
       f"Tailspin,tailspin.example\n").encode()


def _upload(client, app, data, name="tenants.csv"):
    return client.post(reverse("onboarding:bulk-import"),
                       {"file": SimpleUploadedFile(name, data, content_type="text/csv"), "home_app": app.pk})


def test_good_rows_created_bad_rows_refused_with_reasons(portal_on_emulator, operator_client):
    page = _upload(operator_client, portal_on_emulator.app, CSV)
    body = page.content.decode()
    assert page.status_code == 200 and "3 created, 3 refused" in body
    assert "No tenant named &#x27;ghost.example&#x27;" in body or "No tenant named 'ghost.example'" in body
    assert "already onboarded for Fabrikam" in body and "Both a customer name" in body
    assert sorted(Customer.objects.values_list("name", flat=True)) == ["Fabrikam", "Northwind", "Tailspin"]
    assert CustomerTenant.objects.count() == 3
    # The refused rows left nothing behind: no customer "Ghost Corp" or "Fabrikam again" without a tenant.
    assert not Customer.objects.filter(tenants=None).exists()
    assert AuditEvent.objects.get(action="tenant.bulk_import").detail == {"rows": 6, "created": 3}


def test_a_file_that_is_not_the_expected_csv_is_refused(portal_on_emulator, operator_client):
    page = _upload(operator_client, portal_on_emulator.app, b"name,domain\nx,y\n")
    assert page.status_code == 400 and "customer,domain_or_tenant_id" in page.content.decode()
    binary = _upload(operator_client, portal_on_emulator.app, b"\xff\xfe\x00garbage")
    assert binary.status_code == 400 and "UTF-8" in binary.content.decode()
    assert not Customer.objects.exists()


def test_viewers_cannot_import(portal_on_emulator, staff_clients):
    assert _upload(staff_clients["viewer"], portal_on_emulator.app, CSV).status_code == 403
