"""Safe redirects: every `next` the portal honours (login, "Test now") stays on this site; anything else falls back to
the page's default and never answers 500."""
import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from portal.http import safe_next
from tests.conftest import PASSWORD

BAD = [
    "https://evil.example/",
    "http://evil.example/dashboard/",
    "//evil.example/",
    "///evil.example/",
    "\\\\evil.example\\",
    "/\\evil.example/",
    "\\/evil.example/",
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " javascript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "https:evil.example",
    "http://testserver@evil.example/",
    "\x00/dashboard/",
    "\u202e//evil.example",
    "\uff0f\uff0fevil.example",
    "https://evil.example\u3002com/",
    "/" + "a" * 5000,
    "",
]


@pytest.fixture
def offboarded_and_confirmed(make_tenant):
    now = timezone.now()
    return make_tenant(offboarded_at=now, removal_confirmed_at=now)


@pytest.mark.django_db
@pytest.mark.parametrize("value", BAD)
def test_test_now_refuses_foreign_or_odd_next(staff_clients, offboarded_and_confirmed, value):
    url = reverse("onboarding:tenant-test-now", kwargs={"pk": offboarded_and_confirmed.pk})
    response = staff_clients["operator"].post(url, {"next": value})
    assert response.status_code == 302 and response["Location"] == reverse("exchange:tokentest-list")


@pytest.mark.django_db
def test_test_now_follows_a_next_on_this_site(staff_clients, offboarded_and_confirmed):
    url = reverse("onboarding:tenant-test-now", kwargs={"pk": offboarded_and_confirmed.pk})
    target = reverse("onboarding:tenant-detail", kwargs={"pk": offboarded_and_confirmed.pk}) + "?tab=health"
    assert staff_clients["operator"].post(url, {"next": target})["Location"] == target
    assert staff_clients["operator"].post(url, {"next": "http://testserver/customers/"})["Location"] == (
        "http://testserver/customers/")


@pytest.mark.django_db
@pytest.mark.parametrize("value", BAD)
def test_login_refuses_foreign_or_odd_next(client, make_staff, value):
    make_staff("viewer", "ada")
    form = client.get(reverse("portal:login"), {"next": value})
    assert form.status_code == 200
    assert 'name="next" value=""' in form.content.decode()
    response = client.post(reverse("portal:login"), {"username": "ada", "password": PASSWORD, "next": value})
    assert response.status_code == 302 and response["Location"] == reverse("console:home")  # the role's home, never the given next


@pytest.mark.django_db
def test_login_follows_a_next_on_this_site(client, make_staff):
    make_staff("viewer", "ada")
    target = reverse("exchange:tokentest-list") + "?outcome=failed"
    response = client.post(reverse("portal:login"), {"username": "ada", "password": PASSWORD, "next": target})
    assert response["Location"] == target


def test_https_request_refuses_a_plain_http_next():
    factory = RequestFactory()
    secure = factory.get("/", secure=True)
    assert safe_next(secure, "http://testserver/customers/", "/") == "/"
    assert safe_next(secure, "https://testserver/customers/", "/") == "https://testserver/customers/"
    plain = factory.get("/")
    assert safe_next(plain, "http://testserver/customers/", "/") == "http://testserver/customers/"
    assert safe_next(plain, None, "console:dashboard") == reverse("console:dashboard")


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["https://evil.example/", "javascript:alert(1)", "//evil", "\\\\evil"])
def test_logout_refuses_foreign_or_odd_next(staff_clients, value):
    response = staff_clients["viewer"].post(reverse("portal:logout"), {"next": value})
    assert response.status_code == 302 and response["Location"] == reverse("portal:login")


@pytest.mark.django_db
def test_logout_follows_a_next_on_this_site(staff_clients):
    response = staff_clients["viewer"].post(reverse("portal:logout"), {"next": "/login/?next=/customers/"})
    assert response["Location"] == "/login/?next=/customers/"
