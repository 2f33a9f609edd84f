"""Choices that carry their label and their badge colour once (NetBox's ChoiceSet idea): a status, an outcome or a
severity declares `COLOURS` beside its values, and every page draws `choice.colour` and `choice.label` from it."""

from typing import NamedTuple

from django.db import models

# The badge colours portal.css draws (.badge.ok, .badge.muted, .badge.warn, .badge.bad).
OK, MUTED, WARN, BAD = "ok", "muted", "warn", "bad"
BADGE_COLOURS = (OK, MUTED, WARN, BAD)


class ColouredChoices(models.TextChoices):
    """A TextChoices whose subclasses declare `COLOURS = nonmember({value: colour, ...})` for every value
    (tests/portal/test_choices.py checks each one is complete)."""

    @property
    def colour(self) -> str:
        return type(self).COLOURS[self.value]

    @classmethod
    def of(cls, value: str):
        """The member for a stored value, or None for an empty one (an outcome not known yet)."""
        return cls(value) if value else None


class Badge(NamedTuple):
    """A badge that is no choice's value (e.g. "Removal confirmed"), drawn like one."""
    label: str
    colour: str
