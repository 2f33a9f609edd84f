"""Choices carry their label and badge colour once (portal.choices): every value of every coloured choice set has a
colour portal.css draws, and each state has one label on every page."""
from exchange.models import TokenTest
from exchange.severity import Severity
from onboarding.models import ConsentLink, CustomerTenant
from portal.choices import BADGE_COLOURS, ColouredChoices


def _all(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all(sub)


def test_every_coloured_choice_has_a_drawn_colour():
    sets = list(_all(ColouredChoices))
    assert {TokenTest.Status, TokenTest.Outcome, CustomerTenant.Status, ConsentLink.Outcome, Severity} <= set(sets)
    for choices in sets:
        assert {member.colour for member in choices} <= set(BADGE_COLOURS), choices
        assert set(choices.COLOURS) == set(choices.values), choices


def test_one_label_for_consented_without_a_role():
    assert CustomerTenant.Status.NO_ROLE.label == TokenTest.Outcome.NO_ROLE.label == "Consented, no Azure role"


def test_a_consent_links_badge_is_its_outcome_or_expired(make_tenant):
    from datetime import timedelta

    from django.utils import timezone

    tenant = make_tenant()
    link = ConsentLink(tenant=tenant, state_hash="x", expires_at=timezone.now() + timedelta(days=1))
    assert (link.badge.label, link.badge.colour) == ("Not used yet", "warn")
    link.expires_at = timezone.now() - timedelta(seconds=1)
    assert (link.badge.label, link.badge.colour) == ("Expired", "muted")
    link.outcome = ConsentLink.Outcome.ACCEPTED
    assert (link.badge.label, link.badge.colour) == ("Consent received", "ok")
