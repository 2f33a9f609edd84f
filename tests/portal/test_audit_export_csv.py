"""CSV exports are safe to open in a spreadsheet: a cell beginning with =, +, -, @, a tab or a carriage return gets a
leading single quote (OWASP, "CSV Injection"), so it shows as text and is never evaluated."""
import csv
import io

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from onboarding.services import customer_create
from portal.models import AuditEvent
from portal.services import Actor, audit_record
from portal.views import spreadsheet_safe


def _export_rows(client, **params):
    response = client.get(reverse("portal:audit-export"), params)
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.mark.parametrize(("cell", "safe"), [
    ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"), ("+SUM(1,2)", "'+SUM(1,2)"), ("-2+3", "'-2+3"),
    ("@SUM(1)", "'@SUM(1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"), ("Fabrikam", "Fabrikam"), ("", ""),
    ("a=b", "a=b"), (42, 42), (None, None),
])
def test_cells_that_a_spreadsheet_would_evaluate_are_quoted(cell, safe):
    assert spreadsheet_safe(cell) == safe


@pytest.mark.django_db
def test_export_neutralises_a_staff_name_and_a_customer_name(make_staff):
    user = make_staff("auditor", "auditor")
    # Django's own validator would refuse this name; an account made elsewhere (a directory sync, the shell) need not.
    get_user_model().objects.filter(pk=user.pk).update(username="=cmd|' /C calc'!A0")
    user.refresh_from_db()
    client = Client()
    client.force_login(user)
    customer = customer_create(name="+SUM(1,2)", actor=Actor.staff(user))
    audit_record(action="test.named", actor=Actor.staff(user), target_type="customer", target_id="-1+1",
                 detail={"name": customer.name})
    rows = _export_rows(client)
    named = next(row for row in rows if row["action"] == "test.named")
    assert named["actor_label"] == "'=cmd|' /C calc'!A0" and named["target_id"] == "'-1+1"
    assert named["detail"] == '{"name": "+SUM(1,2)"}'  # the JSON cell begins with "{": nothing to evaluate
    assert all(not value.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for value in row.values())
    # The trail itself keeps the name exactly (the quote is the export's only).
    assert AuditEvent.objects.get(action="test.named").actor_label == "=cmd|' /C calc'!A0"
