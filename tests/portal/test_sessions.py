"""portal.sessions: a staff session's idle expiry slides with its requests, written at most once a minute (a page view
within the minute writes nothing)."""
from datetime import timedelta

import pytest
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from portal.sessions import SLIDE_SECONDS
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _signed_in(make_staff) -> Client:
    make_staff("viewer", "vera")
    client = Client()
    assert client.post(reverse("portal:login"), {"username": "vera", "password": PASSWORD}).status_code == 302
    assert client.get(reverse("console:dashboard")).status_code == 200  # the first request stamps the sign-in time
    return client


def _session_writes(client: Client) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("console:dashboard")).status_code == 200
    return [q["sql"] for q in queries if "django_session" in q["sql"] and not q["sql"].startswith("SELECT")]


def test_a_request_within_the_minute_writes_no_session(make_staff):
    client = _signed_in(make_staff)
    expires = Session.objects.get().expire_date
    assert _session_writes(client) == []
    assert Session.objects.get().expire_date == expires


def test_the_expiry_slides_once_it_lags_by_more_than_the_minute(make_staff, settings):
    client = _signed_in(make_staff)
    lagging = timezone.now() + timedelta(seconds=settings.SESSION_COOKIE_AGE - SLIDE_SECONDS - 5)
    Session.objects.update(expire_date=lagging)
    assert len(_session_writes(client)) == 1
    slid = Session.objects.get().expire_date
    assert slid > lagging + timedelta(seconds=5)
    assert timedelta(seconds=settings.SESSION_COOKIE_AGE - 5) < slid - timezone.now()
    assert client.cookies["sessionid"]["max-age"] == settings.SESSION_COOKIE_AGE
