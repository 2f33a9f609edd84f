"""CSV for spreadsheets: the formula guard every CSV the portal writes goes through, and a pseudo-buffer for
streaming csv.writer rows into an HTTP response."""

# A cell a spreadsheet would read as a formula (or that hides one behind a tab or carriage return) gets a leading
# single quote, as OWASP's "CSV Injection" advice says: the text shows as it is and is never evaluated.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class Echo:
    """What csv.writer writes to when each row is yielded as it is written (a streamed response)."""

    def write(self, value):
        return value
