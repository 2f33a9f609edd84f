"""One vocabulary for how bad something is: a lint finding, a diagnosis. Each value carries its label and the colour
its badge is drawn in, once (portal.choices)."""
from enum import nonmember

from portal import choices
from portal.choices import ColouredChoices


class Severity(ColouredChoices):
    OK = "ok", "OK"
    INFO = "info", "Info"
    WARNING = "warning", "Warning"
    ERROR = "error", "Error"
    COLOURS = nonmember({"ok": choices.OK, "info": choices.MUTED, "warning": choices.WARN, "error": choices.BAD})

    @property
    def ok(self) -> bool:
        return self == Severity.OK
