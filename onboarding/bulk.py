"""Bulk onboarding: a CSV of customers and their tenants' domains or ids, checked whole before anything is created,
then each row created whole or not at all. Every attempt is audited."""
import csv
import hashlib
import io
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction

from exchange.clouds import CLOUDS, is_guid
from onboarding.models import Customer, CustomerTenant
from onboarding.services import CONTROL_CHARS, DOMAIN, customer_create, tenant_add
from onboarding.tags import tags_parse
from portal.services import Actor, audit_record


@dataclass
class BulkRow:
    line: int
    customer: str
    entered: str
    ok: bool
    message: str
    tenant: CustomerTenant | None = None


@dataclass
class CheckedRow:
    line: int
    customer: str
    entered: str
    cloud: str = ""  # empty: the home app's cloud
    tags: list[str] | None = None


BULK_COLUMNS = ("customer", "domain_or_tenant_id")
OPTIONAL_COLUMNS = ("cloud", "tags")  # a cloud key (global, usgov, …); tags separated by spaces or semicolons
MAX_BULK_PROBLEMS = 50  # shown; the rest are counted
MAX_ENTERED = 255


def _shown(value: str, limit: int = 40) -> str:
    return value if len(value) <= limit else value[:limit] + "…"


def _bulk_problem(line: int, column: str, value: str, limit: int, what: str) -> str | None:
    if not value:
        return f"Line {line}, column {column}: empty; {what} is needed."
    if len(value) > limit:
        return f"Line {line}, column {column}: {len(value):,} characters; at most {limit}."
    if CONTROL_CHARS.search(value):  # a NUL would not even reach PostgreSQL
        return f"Line {line}, column {column}: contains control characters (such as NUL)."
    return None


def _row_check(line: int, cells: dict, name_limit: int) -> tuple[CheckedRow, list[str]]:
    """One row's values, checked: (the row, its problems by line and column)."""
    name, entered = cells["customer"], cells["domain_or_tenant_id"].lower()
    cloud, tags_text = cells.get("cloud", "").lower(), cells.get("tags", "")
    entered_problem = _bulk_problem(line, "domain_or_tenant_id", entered, MAX_ENTERED, "a domain or tenant id")
    problems = list(filter(None, [_bulk_problem(line, "customer", name, name_limit, "a customer name"),
                                  entered_problem]))
    if not entered_problem and not (is_guid(entered) or DOMAIN.match(entered)):
        problems.append(f"Line {line}, column domain_or_tenant_id: “{_shown(entered)}” is neither a domain "
                        "(such as contoso.com) nor a tenant id (a GUID).")
    if cloud and cloud not in CLOUDS:
        problems.append(f"Line {line}, column cloud: “{_shown(cloud)}” is not a cloud; one of {', '.join(CLOUDS)} "
                        "(or empty for the home app's).")
    tags = []
    try:
        tags = tags_parse(tags_text)
    except ValidationError as exc:
        problems.append(f"Line {line}, column tags: {' '.join(exc.messages)}")
    return CheckedRow(line, name, entered, cloud, tags), problems


def _decoded(data: bytes) -> tuple[str | None, list[str]]:
    max_bytes, max_rows = settings.BULK_IMPORT_MAX_BYTES, settings.BULK_IMPORT_MAX_ROWS
    if len(data) > max_bytes:
        return None, [f"The file is larger than {max_bytes:,} bytes: split it (at most {max_rows} rows per file)."]
    try:
        return data.decode("utf-8-sig"), []
    except UnicodeDecodeError as exc:
        return None, [f"The file is not UTF-8 text (byte {exc.start + 1:,} is not). Export the CSV as UTF-8."]


def bulk_rows_check(data: bytes) -> tuple[list[CheckedRow], list[str]]:
    """Read and check a whole bulk-import file without creating anything or calling anyone: (rows, problems). Any
    problem refuses the file."""
    text, problems = _decoded(data)
    if text is None:
        return [], problems
    max_rows = settings.BULK_IMPORT_MAX_ROWS
    reader = csv.reader(io.StringIO(text, newline=""))
    name_limit = Customer._meta.get_field("name").max_length
    rows, header = [], None
    try:
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue  # blank lines
            if header is None:
                header = [cell.strip().lower() for cell in record]
                if not set(BULK_COLUMNS) <= set(header):
                    return [], ["The first row must name the columns: customer,domain_or_tenant_id "
                                "(and optionally cloud,tags)"]
                at = {column: header.index(column) for column in BULK_COLUMNS + OPTIONAL_COLUMNS if column in header}
                continue
            cells = {column: record[i].strip() if i < len(record) else "" for column, i in at.items()}
            if len(rows) >= max_rows:
                rows.append(None)  # only counted from here on
                continue
            row, row_problems = _row_check(reader.line_num, cells, name_limit)
            rows.append(row)
            problems += row_problems
    except csv.Error as exc:
        # The csv module refuses a field over its limit (131,072 characters) or a NUL byte: the file is refused.
        reason = (f"a value is longer than {csv.field_size_limit():,} characters (at most {MAX_ENTERED})"
                  if "field larger than field limit" in str(exc) else f"not readable as CSV ({exc})")
        return [], [*problems, f"Line {reader.line_num}: {reason}."]
    if header is None:
        return [], ["The file is empty: the first row must name the columns: customer,domain_or_tenant_id"]
    if len(rows) > max_rows:
        problems.insert(0, f"The file has {len(rows):,} rows: at most {max_rows} per file. Split it.")
    elif not rows:
        problems.append("The file has a header but no rows.")
    return rows, problems


def bulk_import(*, data: bytes, home_app, actor: Actor, created_by=None) -> list[BulkRow]:
    """CSV with columns `customer` and `domain_or_tenant_id` (a header row), and optionally `cloud` (the tenant's
    national cloud; empty: the home app's) and `tags` (the tenant's). The whole file is checked first (size,
    encoding, header, row count, every value): a file with any problem is refused whole, nothing created and nobody
    called (ValidationError listing each problem by line and column). Then each row stands alone: created whole
    (customer if new, and tenant, resolved through discovery) or not at all, with the reason. Every attempt is
    audited, with the file's size and SHA-256 (never its content)."""
    about = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    checked, problems = bulk_rows_check(data)
    if problems:
        audit_record(action="tenant.bulk_import_refused", actor=actor,
                     detail={**about, "problems": len(problems), "first_problems": problems[:5]})
        more = len(problems) - MAX_BULK_PROBLEMS
        raise ValidationError(problems[:MAX_BULK_PROBLEMS] + ([f"… and {more} more problems."] if more > 0 else []))
    rows: list[BulkRow] = []
    for row in checked:
        try:
            with transaction.atomic():
                customer = Customer.objects.filter(name__iexact=row.customer).first() or customer_create(
                    name=row.customer, actor=actor, created_by=created_by)
                tenant = tenant_add(customer=customer, domain_or_id=row.entered, home_app=home_app, actor=actor,
                                    cloud=row.cloud, tags=row.tags)
            rows.append(BulkRow(row.line, row.customer, row.entered, True, f"Added tenant {tenant.tenant_id}",
                                tenant))
        except ValidationError as exc:
            messages = exc.message_dict.get("domain_or_id") or exc.message_dict.get("name") or exc.messages
            message = " ".join(messages).replace("choose that cloud", "give that cloud in the file's cloud column")
            rows.append(BulkRow(row.line, row.customer, row.entered, False, message))
    created = sum(r.ok for r in rows)
    audit_record(action="tenant.bulk_import", actor=actor,
                 detail={**about, "rows": len(rows), "created": created, "refused": len(rows) - created})
    return rows
