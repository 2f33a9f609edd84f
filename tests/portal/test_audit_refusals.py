"""Refused (403) staff requests are audited, aggregated: the first refusal per user, method, page and window is an
event; later ones only count in the shared cache, and that count rides on the first refusal of a later window."""
import pytest
from django.urls import reverse

from portal import services
from portal.models import AuditEvent
from portal.selectors import audit_chain_verify


@pytest.fixture
def clock(monkeypatch, settings):
    """The refusal window's clock, moved by the test (the window is settings.AUDIT_REFUSAL_WINDOW_SECONDS)."""
    settings.AUDIT_REFUSAL_WINDOW_SECONDS = 600
    now = {"t": 1_800_000_000.0}
    monkeypatch.setattr(services, "_refusal_now", lambda: now["t"])
    return now


def _refusals(**filters):
    return list(AuditEvent.objects.filter(action="access.refused", **filters).order_by("seq"))


@pytest.mark.django_db
def test_thirty_refusals_give_one_event_and_the_next_window_carries_their_count(staff_clients, clock):
    viewer, url = staff_clients["viewer"], reverse("portal:audit-list")
    for _ in range(30):
        assert viewer.get(url, REMOTE_ADDR="198.51.100.4").status_code == 403
    (first,) = _refusals()
    assert first.actor_label == "viewer-user" and first.ip == "198.51.100.4"
    assert first.target_type == "route" and first.target_id == "portal:audit-list"
    assert first.detail["path"] == url and first.detail["method"] == "GET" and "audit" in first.detail["reason"]
    assert "previous" not in first.detail

    clock["t"] += 600  # the next window
    for _ in range(5):
        viewer.get(url)
    events = _refusals()
    assert len(events) == 2
    assert events[1].detail["previous"] == {"window_start": "2027-01-15T08:00:00+00:00", "count": 30}

    clock["t"] += 3 * 600  # windows later: the last window with refusals is the one carried
    viewer.get(url)
    assert _refusals()[-1].detail["previous"]["count"] == 5
    assert len(_refusals()) == 3 and audit_chain_verify().ok


@pytest.mark.django_db
def test_each_user_and_page_is_counted_apart(staff_clients, clock):
    for _ in range(3):
        staff_clients["viewer"].get(reverse("portal:audit-list"))
        staff_clients["viewer"].get(reverse("portal:audit-verify"))
        staff_clients["auditor"].get(reverse("console:dashboard"))
        staff_clients["operator"].post(reverse("portal:audit-verify"))
    assert sorted((e.actor_label, e.target_id, e.detail["method"]) for e in _refusals()) == [
        ("auditor-user", "console:dashboard", "GET"),
        ("operator-user", "portal:audit-verify", "POST"),
        ("viewer-user", "portal:audit-list", "GET"),
        ("viewer-user", "portal:audit-verify", "GET"),
    ]


@pytest.mark.django_db
def test_anonymous_visitors_are_sent_to_sign_in_not_refused(staff_clients, clock):
    response = staff_clients[None].get(reverse("portal:audit-list"))
    assert response.status_code == 302 and reverse("portal:login") in response["Location"]
    assert _refusals() == []


@pytest.mark.django_db
def test_a_permitted_request_records_no_refusal(staff_clients, clock):
    assert staff_clients["auditor"].get(reverse("portal:audit-list")).status_code == 200
    assert _refusals() == []


@pytest.mark.django_db
def test_a_form_post_refused_for_csrf_is_our_audited_403_page(make_staff, clock):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(make_staff("operator"))
    response = client.post(reverse("onboarding:customer-create"), {"name": "Contoso"})
    assert response.status_code == 403
    assert b"<style" not in response.content and b"could not be verified" in response.content
    (event,) = _refusals()
    assert event.actor_label == "operator-user" and "CSRF" in event.detail["reason"]
