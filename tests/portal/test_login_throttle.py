"""Sign-in throttling: an account or an address is locked after too many failures (the right password is refused
while it lasts), an admin unlocks it, and failures reach the audit trail aggregated, never one event each."""
import io

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from portal import throttle
from portal.models import AuditEvent
from portal.selectors import audit_chain_verify
from tests.conftest import PASSWORD

LOGIN = "/login/"
A, B = "203.0.113.9", "198.51.100.7"


def _sign_in(client, username, password, ip=A):
    return client.post(reverse("portal:login"), {"username": username, "password": password}, REMOTE_ADDR=ip)


def _auth_events():
    return list(AuditEvent.objects.filter(action__in=["auth.login_failed", "auth.login_locked"]).order_by("seq"))


@pytest.mark.django_db
def test_thirty_wrong_passwords_lock_the_account_until_an_admin_unlocks_it(client, make_staff, admin_client_portal):
    make_staff("viewer", "ada")
    for _ in range(30):
        assert _sign_in(client, "ada", "wrong").status_code in (200, 429)
    right = _sign_in(client, "ada", PASSWORD)
    body = right.content.decode()
    assert right.status_code == 429 and int(right["Retry-After"]) > 0
    assert "This account is locked after 5 failed sign-ins" in body and "ask an admin to unlock it" in body
    assert "_auth_user_id" not in client.session
    assert _sign_in(client, "ada", PASSWORD, ip=B).status_code == 429  # the account, from any address
    # 31 failures, two events: the window's first failure and the lock with its count.
    events = _auth_events()
    assert [e.action for e in events] == ["auth.login_failed", "auth.login_locked"]
    assert events[0].detail == {"username": "ada"} and events[0].ip == A
    assert events[1].detail["scope"] == "account" and events[1].detail["failures"] == 5
    assert "wrong" not in str([e.canonical() for e in events])

    locks = admin_client_portal.get(reverse("portal:login-locks")).content.decode()
    assert "ada" in locks and 'name="target" value="ada"' in locks
    unlocked = admin_client_portal.post(reverse("portal:login-locks"), {"target": "ada"}, follow=True)
    assert "Unlocked ada (account)" in unlocked.content.decode()
    event = AuditEvent.objects.get(action="auth.login_unlocked")
    assert event.detail == {"target": "ada", "was_locked": ["account"]} and event.actor_label == "admin-user"
    assert 'name="target" value="ada"' not in admin_client_portal.get(reverse("portal:login-locks")).content.decode()
    ok = _sign_in(client, "ada", PASSWORD)
    assert ok.status_code == 302 and ok["Location"] == reverse("console:home")
    assert AuditEvent.objects.filter(action="auth.login", actor_label="ada").count() == 1
    assert audit_chain_verify().ok


@pytest.mark.django_db
def test_many_usernames_from_one_address_lock_the_address(client, make_staff, settings):
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 8  # fewer password hashes to wait for; the default is 20
    make_staff("viewer", "bob")
    for i in range(settings.LOGIN_ADDRESS_FAILURE_LIMIT):
        assert _sign_in(client, f"guess-{i}", "wrong", ip=B).status_code == 200
    refused = _sign_in(client, "bob", PASSWORD, ip=B)
    assert refused.status_code == 429 and "Sign-in from your network address is locked" in refused.content.decode()
    # Made-up names leave no event each: one for the address's lock, with its count.
    events = _auth_events()
    assert [(e.action, e.detail["scope"], e.detail["address"], e.detail["failures"]) for e in events] == [
        ("auth.login_locked", "address", B, settings.LOGIN_ADDRESS_FAILURE_LIMIT)]
    assert _sign_in(Client(), "bob", PASSWORD, ip=A).status_code == 302  # other addresses are not affected
    out = io.StringIO()
    call_command("login_unlock", B, stdout=out)
    assert f"Unlocked {B} (address)" in out.getvalue()
    assert AuditEvent.objects.get(action="auth.login_unlocked").actor_label == "manage.py"
    assert _sign_in(client, "bob", PASSWORD, ip=B).status_code == 302


@pytest.mark.django_db
def test_a_correct_password_clears_the_accounts_failures(client, make_staff, settings):
    make_staff("viewer", "cy")
    for _ in range(settings.LOGIN_ACCOUNT_FAILURE_LIMIT - 1):
        _sign_in(client, "cy", "wrong")
    assert _sign_in(client, "cy", PASSWORD).status_code == 302
    client.post(reverse("portal:logout"))
    for _ in range(settings.LOGIN_ACCOUNT_FAILURE_LIMIT - 1):
        assert _sign_in(client, "cy", "wrong").status_code == 200
    assert _sign_in(client, "cy", PASSWORD).status_code == 302
    assert not AuditEvent.objects.filter(action="auth.login_locked").exists()


@pytest.mark.django_db
def test_the_django_admin_sign_in_is_throttled_too(client, make_staff, settings):
    user = make_staff("admin", "root")
    user.is_superuser = True
    user.save()
    for _ in range(settings.LOGIN_ACCOUNT_FAILURE_LIMIT):
        client.post("/django-admin/login/", {"username": "root", "password": "wrong"}, REMOTE_ADDR=A)
    response = client.post("/django-admin/login/", {"username": "root", "password": PASSWORD}, REMOTE_ADDR=A)
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="auth.login_locked", detail__scope="account").count() == 1


def test_ipv6_clients_are_counted_by_their_64():
    assert throttle.address_of("2001:db8:1:2:aaaa::1") == throttle.address_of("2001:db8:1:2:bbbb::2") == (
        "2001:db8:1:2::/64")
    assert throttle.address_of("::ffff:203.0.113.9") == "203.0.113.9" == throttle.address_of(A)


@pytest.mark.django_db
def test_only_admins_unlock(staff_clients):
    for role in ("viewer", "operator", "auditor"):
        assert staff_clients[role].post(reverse("portal:login-locks"), {"target": "ada"}).status_code == 403
    assert not AuditEvent.objects.filter(action="auth.login_unlocked").exists()


@pytest.mark.django_db
def test_an_address_limit_of_zero_is_off(client, make_staff, settings):
    make_staff("viewer", "dee")
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 3
    for i in range(3):
        _sign_in(client, f"guess-{i}", "wrong")
    assert _sign_in(client, "dee", PASSWORD).status_code == 429
    call_command("login_unlock", A, stdout=io.StringIO())
    settings.LOGIN_ADDRESS_FAILURE_LIMIT = 0
    for i in range(3, 6):
        _sign_in(client, f"guess-{i}", "wrong")
    assert _sign_in(client, "dee", PASSWORD).status_code == 302
    assert AuditEvent.objects.filter(action="auth.login_locked").count() == 1
