"""Rollups of finished token tests (exchange.rollups keeps them as tests finish; the dashboard and charts read them,
never the tests); exchange.models re-exports the models."""
from django.db import models


class TokenTestRollup(models.Model):
    """Finished token tests counted per UTC hour and day × outcome × diagnosis code (exchange.rollups keeps them as
    tests finish), so charts never read the tests; kept when old tests' steps are pruned."""

    class Period(models.TextChoices):
        HOUR = "hour", "Hour"
        DAY = "day", "Day"

    period = models.CharField(max_length=4, choices=Period.choices)
    start = models.DateTimeField()
    outcome = models.CharField(max_length=24)  # a TokenTest.Outcome value
    diagnosis_code = models.CharField(max_length=40, blank=True)
    n = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["period", "start", "outcome", "diagnosis_code"],
                                               name="tokentestrollup_bucket")]

    def __str__(self):
        return f"{self.period} {self.start:%Y-%m-%d %H:00} {self.outcome} {self.diagnosis_code}: {self.n}"


class HopLatencyRollup(models.Model):
    """A histogram of each hop's duration per UTC hour: how many steps of `hop` took at most `le_ms` (and more than
    the bucket below), with their total duration; p50/p95 are estimated from it (exchange.rollups)."""

    hour = models.DateTimeField()
    hop = models.CharField(max_length=32)
    le_ms = models.PositiveIntegerField(help_text="the bucket's upper bound; rollups.OVERFLOW_MS for +Inf")
    n = models.PositiveIntegerField(default=0)
    sum_ms = models.BigIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["hour", "hop", "le_ms"], name="hoplatencyrollup_bucket")]

    def __str__(self):
        return f"{self.hour:%Y-%m-%d %H:00} {self.hop} ≤{self.le_ms} ms: {self.n}"
