"""manage.py create_staff: a user with exactly one role, audited; bad input refused clearly."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError

from portal.models import AuditEvent
from portal.roles import roles_of


@pytest.mark.django_db
def test_creates_user_with_role_and_prints_generated_password():
    out = io.StringIO()
    call_command("create_staff", "olga", "--role", "operator", stdout=out)
    user = get_user_model().objects.get(username="olga")
    assert roles_of(user) == {"operator"}
    password = out.getvalue().split("Password: ")[1].strip()
    assert user.check_password(password)
    assert AuditEvent.objects.get(action="staff.created").detail == {"username": "olga", "role": "operator"}


@pytest.mark.django_db
def test_password_from_environment_and_if_missing(monkeypatch):
    monkeypatch.setenv("STAFF_PW", "a-long-demo-password-1")
    call_command("create_staff", "demo", "--role", "admin", "--password-env", "STAFF_PW", stdout=io.StringIO())
    out = io.StringIO()
    call_command("create_staff", "demo", "--role", "admin", "--if-missing", stdout=out)
    assert "already exists" in out.getvalue()
    assert get_user_model().objects.get(username="demo").check_password("a-long-demo-password-1")


@pytest.mark.django_db
def test_duplicate_and_bad_names_are_refused():
    call_command("create_staff", "sam", "--role", "viewer", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_staff", "sam", "--role", "viewer")
    with pytest.raises(CommandError):
        call_command("create_staff", "bad name!", "--role", "viewer")
    assert get_user_model().objects.count() == 1
