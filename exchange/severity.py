"""One vocabulary for how bad something is: a lint finding, a diagnosis. Each value carries its label and the colour
its badge is drawn in (the CSS classes ok, muted, warn, bad), once."""
from django.db import models


class Severity(models.TextChoices):
    OK = "ok", "OK"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"

    @property
    def colour(self) -> str:
        return _COLOURS[self]

    @property
    def ok(self) -> bool:
        return self == Severity.OK


_COLOURS = {Severity.OK: "ok", Severity.INFO: "muted", Severity.WARNING: "warn", Severity.ERROR: "bad"}
