"""The public consent landing page: validates Microsoft's redirect, refuses unknown/expired/replayed states and other
tenants, explains Microsoft's errors, never reflects markup, rate-limits, audits every attempt — and verifies."""
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from emulator import world as demo
from onboarding.models import ConsentLink
from onboarding.services import consent_link_issue
from portal.models import AuditEvent
from portal.services import Actor

CALLBACK = "/consent/callback/"


@pytest.fixture
def issue(portal_on_emulator, make_tenant):
    def issue(tenant_id=demo.NORTHWIND):
        tenant = make_tenant(tenant_id=tenant_id, home_app=portal_on_emulator.app, consent_received_at=None)
        link, url = consent_link_issue(tenant=tenant, actor=Actor.system("test"))
        return link, url

    return issue


@pytest.fixture
def land(client, django_capture_on_commit_callbacks):
    """Follow Microsoft's redirect to the landing page (the verification task runs when the request commits)."""
    def land(params, **extra):
        with django_capture_on_commit_callbacks(execute=True):
            return client.get(CALLBACK, params, **extra)

    return land


def _progress(client, response):
    url = response.content.decode().split('hx-get="')[1].split('"')[0]
    return client.get(url, HTTP_HX_REQUEST="true")


def test_consent_then_access_verified(issue, consent_at_microsoft, land, client):
    link, url = issue(demo.WOODGROVE)
    params = consent_at_microsoft(url, "accept")
    page = land(params)
    assert page.status_code == 200 and "Thank you — consent received" in page.content.decode()
    link.refresh_from_db()
    assert link.outcome == "accepted" and link.used_at and link.verification.trigger == "consent"
    # Woodgrove's admin assigns no role while consenting (the demo world's Northwind does: consent_grants).
    progress = _progress(client, page)
    assert progress.status_code == 286  # the verification has finished: polling stops
    assert "Consented, no Azure role" in progress.content.decode()
    assert "ask your contact" in progress.content.decode()
    tenant = link.tenant
    tenant.refresh_from_db()
    assert tenant.consent_received_at and tenant.status == "no_role"
    assert AuditEvent.objects.filter(action="consent.received", tenant_id=demo.WOODGROVE).count() == 1


def test_consent_for_a_tenant_with_a_role_shows_access_verified(issue, land, client):
    link, url = issue(demo.FABRIKAM)  # Fabrikam consented before and holds Reader
    state = parse_qs(urlsplit(url).query)["state"][0]
    page = land({"admin_consent": "True", "tenant": demo.FABRIKAM, "state": state})
    assert "We are now checking that access really works" in page.content.decode()
    progress = _progress(client, page)
    assert progress.status_code == 286 and 'id="verification-result">Access verified' in progress.content.decode()
    # The text follows the result: no "now checking" beside it.
    assert "Thank you — access verified" in progress.content.decode()
    assert "now checking" not in progress.content.decode() and "aria-busy" not in progress.content.decode()
    link.tenant.refresh_from_db()
    assert link.tenant.status == "verified"


def test_forged_success_for_a_tenant_that_never_consented_is_not_verified(issue, land, client):
    link, url = issue(demo.WOODGROVE)
    state = parse_qs(urlsplit(url).query)["state"][0]
    page = land({"admin_consent": "True", "tenant": demo.WOODGROVE, "state": state})
    assert page.status_code == 200
    progress = _progress(client, page).content.decode()
    assert "Not consented in this tenant" in progress and "Access verified" not in progress


def test_replay_expired_unknown_and_missing_state(issue, land):
    link, url = issue()
    state = parse_qs(urlsplit(url).query)["state"][0]
    ok = {"admin_consent": "True", "tenant": demo.NORTHWIND, "state": state}
    assert land(ok).status_code == 200
    replay = land(ok)
    assert replay.status_code == 400 and "Consent was already received with this link" in replay.content.decode()
    assert land({**ok, "state": "x" * 43}).status_code == 400
    assert "don't recognise this link" in land({"admin_consent": "True"}).content.decode()
    other, url2 = issue(demo.WOODGROVE)
    ConsentLink.objects.filter(pk=other.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    expired = land({"admin_consent": "True", "tenant": demo.WOODGROVE,
                    "state": parse_qs(urlsplit(url2).query)["state"][0]})
    assert expired.status_code == 400 and "expired" in expired.content.decode()
    actions = set(AuditEvent.objects.filter(action__startswith="consent.").values_list("action", flat=True))
    assert {"consent.received", "consent.replayed", "consent.unknown_state", "consent.missing_state",
            "consent.expired"} <= actions


def test_whitespace_around_the_state_is_dropped_but_other_junk_is_refused(issue, land):
    """The decision: surrounding whitespace is normalised away (the same state); anything else is not a state we
    issued, and no looser lookup ("the first token that looks like ours") turns it into one."""
    link, url = issue()
    state = parse_qs(urlsplit(url).query)["state"][0]
    ok = {"admin_consent": "True", "tenant": demo.NORTHWIND}
    for junk in (state + " appended", state + "x", "<" + state + ">", state[:-1], "%20" + state):
        page = land({**ok, "state": junk})
        assert page.status_code == 400 and "recognise this link" in page.content.decode()
    link.refresh_from_db()
    assert link.usable and link.outcome == "pending"
    assert AuditEvent.objects.filter(action="consent.unknown_state", detail__malformed=True).count() == 5
    assert land({**ok, "state": f" \t{state} \n"}).status_code == 200
    link.refresh_from_db()
    assert link.outcome == "accepted"


def _serialized_tables() -> str:
    from django.core import serializers

    return (serializers.serialize("json", ConsentLink.objects.all())
            + serializers.serialize("json", AuditEvent.objects.all()))


def test_the_state_is_never_at_rest(issue, land):
    """After a success, a replay, an unknown state and a mangled one, the raw state is in no row of either table
    (so in no export either): only its SHA-256 (the link) and an 8-digit hash prefix (params, audit details)."""
    link, url = issue()
    state = parse_qs(urlsplit(url).query)["state"][0]
    other, url2 = issue(demo.WOODGROVE)
    mangled = parse_qs(urlsplit(url2).query)["state"][0]
    ok = {"admin_consent": "True", "tenant": demo.NORTHWIND, "state": state}
    assert land(ok).status_code == 200
    assert land(ok).status_code == 400  # replay
    unknown = "u" * 43
    assert land({**ok, "state": unknown}).status_code == 400
    assert land({**ok, "state": mangled + "<junk>"}).status_code == 400
    assert land({**ok, "state": "\x00" + mangled[:20]}).status_code == 400
    dump = _serialized_tables()
    for secret in (state, mangled, mangled[:20], unknown):
        assert secret not in dump
    link.refresh_from_db()
    assert "state" not in link.redirect_params
    assert link.redirect_params["state_hash_prefix"] == link.state_hash[:8]
    events = AuditEvent.objects.filter(action__startswith="consent.")
    assert {e.detail["params"]["state_hash_prefix"] for e in events if e.action in ("consent.received",
                                                                                 "consent.replayed")} == {
        link.state_hash[:8]}
    other.refresh_from_db()
    assert other.usable and other.redirect_params == {}


def test_migration_scrubs_the_state_from_links_used_before(issue):
    import importlib

    from django.apps import apps

    link, url = issue()
    state = parse_qs(urlsplit(url).query)["state"][0]
    ConsentLink.objects.filter(pk=link.pk).update(redirect_params={"state": state, "tenant": demo.NORTHWIND})
    importlib.import_module("onboarding.migrations.0002_scrub_consent_state").scrub_state(apps, None)
    link.refresh_from_db()
    assert link.redirect_params == {"state_hash_prefix": link.state_hash[:8], "tenant": demo.NORTHWIND}
    assert state not in _serialized_tables()


def test_revoked_link_is_refused(issue, land, portal_on_emulator):
    link, url = issue()
    consent_link_issue(tenant=link.tenant, actor=Actor.system("test"))
    state = parse_qs(urlsplit(url).query)["state"][0]
    page = land({"admin_consent": "True", "tenant": demo.NORTHWIND, "state": state})
    assert page.status_code == 400 and "This link was replaced" in page.content.decode()


def test_consent_from_another_tenant_is_recorded_and_not_accepted(issue, consent_at_microsoft, land):
    link, url = issue(demo.NORTHWIND)
    params = consent_at_microsoft(url.replace(demo.NORTHWIND, "organizations"), "accept", signin_tenant=demo.TAILSPIN)
    page = land(params)
    assert page.status_code == 400 and "Consent came from a different tenant" in page.content.decode()
    assert demo.TAILSPIN in page.content.decode()
    link.refresh_from_db()
    assert link.outcome == "tenant_mismatch" and link.verification is None
    event = AuditEvent.objects.get(action="consent.tenant_mismatch")
    assert event.detail["returned"] == demo.TAILSPIN and event.detail["expected"] == demo.NORTHWIND
    link.tenant.refresh_from_db()
    assert link.tenant.consent_received_at is None


@pytest.mark.parametrize("error, description, heading, kind", [
    ("access_denied", "AADSTS65004: User declined to consent to access the app.", "Consent was declined", "declined"),
    ("access_denied", "AADSTS50020: User account from identity provider does not exist in tenant.",
     "another organisation", "wrong_account"),
    ("consent_required", "AADSTS65001: The user or administrator has not consented.", "consent is needed",
     "consent_required"),
    ("invalid_request", "AADSTS90014: The required field is missing.", "could not complete", "invalid_request"),
])
def test_microsoft_errors_are_explained(issue, land, error, description, heading, kind):
    link, url = issue()
    state = parse_qs(urlsplit(url).query)["state"][0]
    page = land({"error": error, "error_description": description, "state": state, "admin_consent": "True"})
    assert heading in page.content.decode()
    assert AuditEvent.objects.filter(action=f"consent.{kind}").exists()
    link.refresh_from_db()
    assert link.used_at and link.verification is None


def test_decline_through_the_emulator_marks_the_tenant_declined(issue, consent_at_microsoft, land):
    link, url = issue()
    page = land(consent_at_microsoft(url, "cancel"))
    assert "Consent was declined" in page.content.decode()
    link.tenant.refresh_from_db()
    assert link.tenant.status == "declined"


def test_a_declined_link_reopened_says_it_was_declined(issue, consent_at_microsoft, land):
    link, url = issue()
    declined = consent_at_microsoft(url, "cancel")
    land(declined)
    again = land(declined).content.decode()  # the customer reopens the page (history, a bookmark)
    assert "Consent was declined with this link" in again and "nothing was changed in your tenant" in again
    assert "you are done" not in again and "already received" not in again


def test_hostile_and_oversized_parameters_are_text(issue, land):
    _, url = issue()
    state = parse_qs(urlsplit(url).query)["state"][0]
    page = land({"error": "<script>alert(1)</script>", "error_description": "<img src=x onerror=alert(1)>" + "A" * 50000,
                 "state": state, "error_uri": "javascript:alert(1)"})
    body = page.content.decode()
    assert "<script>alert(1)" not in body and "<img src=x" not in body and "&lt;img src=x" in body
    assert "A" * 1001 not in body and len(body) < 20000
    assert 'href="javascript:' not in body


def test_rate_limited_per_client_address(issue, land, settings):
    settings.CONSENT_RATE_LIMIT = 3
    for _ in range(3):
        assert land({"state": "nope"}, REMOTE_ADDR="198.51.100.7").status_code == 400
    limited = land({"state": "nope"}, REMOTE_ADDR="198.51.100.7")
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 60  # the rest of the minute
    assert land({"state": "nope"}, REMOTE_ADDR="198.51.100.8").status_code == 400
    assert AuditEvent.objects.filter(action="consent.rate_limited").count() == 1


def test_progress_url_is_unguessable(client):
    assert client.get(reverse("onboarding:consent-progress", kwargs={"token": "forged"})).status_code == 404


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.sampled_from(["admin_consent", "tenant", "state", "scope", "error", "error_description",
                                        "error_uri", "other"]),
                       st.one_of(st.just("USE"), st.just("True"), st.just(demo.NORTHWIND), st.text(max_size=300)),
                       max_size=7))
def test_arbitrary_query_strings_never_break_the_page(issue_once, land, query, settings):
    settings.CONSENT_RATE_LIMIT = 10_000
    link, state = issue_once
    # "USE" stands for the link's real state: some examples carry it, some twice (a replay).
    query = {k: (state if v == "USE" else v) for k, v in query.items()}
    response = land(query)
    assert response.status_code in (200, 400)
    body = response.content.decode()
    assert "<script>" not in body.split("</head>")[1]
    for value in query.values():
        if "<" in value and len(value) > 3:
            assert value not in body  # rendered escaped, never as markup
    accepted = ConsentLink.objects.filter(pk=link.pk, outcome="accepted").count()
    assert accepted <= 1


@pytest.fixture
def issue_once(issue):
    link, url = issue()
    return link, parse_qs(urlsplit(url).query)["state"][0]
