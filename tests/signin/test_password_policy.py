"""Local passwords as break-glass accounts: PASSWORD_SIGNIN=break-glass refuses everyone but the superusers named in
BREAK_GLASS_USERS, and every break-glass sign-in is audited as such."""
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from portal.models import AuditEvent
from tests.conftest import PASSWORD


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("rescue", password=PASSWORD)


def _password_login(username):
    client = Client()
    response = client.post(reverse("portal:login"), {"username": username, "password": PASSWORD})
    return client, response


def test_passwords_on_for_everyone_by_default(make_staff):
    make_staff("operator", "olivia")
    client, response = _password_login("olivia")
    assert response.status_code == 302 and "_auth_user_id" in client.session
    assert not AuditEvent.objects.filter(action="auth.break_glass_login").exists()


def test_break_glass_only_refuses_other_accounts(make_staff, superuser, settings):
    settings.PASSWORD_SIGNIN = "break-glass"
    settings.BREAK_GLASS_USERS = ["rescue"]
    make_staff("admin", "alice")
    client, response = _password_login("alice")
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert b"reserved for break-glass accounts" in response.content
    refused = AuditEvent.objects.get(action="auth.password_refused")
    assert refused.detail["username"] == "alice"
    assert AuditEvent.objects.filter(action="auth.login_failed").exists()


def test_a_named_superuser_signs_in_and_is_audited_as_break_glass(superuser, settings):
    settings.PASSWORD_SIGNIN = "break-glass"
    settings.BREAK_GLASS_USERS = ["rescue"]
    client, response = _password_login("rescue")
    assert response.status_code == 302 and "_auth_user_id" in client.session
    event = AuditEvent.objects.get(action="auth.break_glass_login")
    assert event.actor_label == "rescue" and event.detail["method"] == "password"


def test_a_break_glass_account_must_be_a_superuser(make_staff, settings):
    settings.PASSWORD_SIGNIN = "break-glass"
    settings.BREAK_GLASS_USERS = ["alice"]
    make_staff("admin", "alice")
    client, _ = _password_login("alice")
    assert "_auth_user_id" not in client.session


def test_a_superuser_not_named_is_refused(superuser, settings):
    settings.PASSWORD_SIGNIN = "break-glass"
    settings.BREAK_GLASS_USERS = []
    client, _ = _password_login("rescue")
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.password_refused").count() == 1


def test_a_wrong_password_is_not_reported_as_refused_by_policy(make_staff, settings):
    settings.PASSWORD_SIGNIN = "break-glass"
    make_staff("admin", "alice")
    Client().post(reverse("portal:login"), {"username": "alice", "password": "wrong"})
    assert not AuditEvent.objects.filter(action="auth.password_refused").exists()
    assert AuditEvent.objects.filter(action="auth.login_failed").exists()


def test_break_glass_sign_in_while_passwords_are_on_is_still_audited(superuser, settings):
    settings.BREAK_GLASS_USERS = ["rescue"]
    client, _ = _password_login("rescue")
    assert "_auth_user_id" in client.session
    assert AuditEvent.objects.filter(action="auth.break_glass_login").exists()
